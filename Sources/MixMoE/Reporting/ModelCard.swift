import Foundation

/// A pretrained model's card: `README.md` (configuration, training data and budget, time, dev
/// perplexity per language) and `loss.svg` (the loss curve from `train_log.jsonl`).
public enum ModelCard {
    /// Tokens a checkpoint's pretraining has seen in all, from its `run.json` (`mixmoe pretrain`
    /// continues one seeded window order, so `data_end` windows of `seq` tokens were read);
    /// nil when the directory has no such record.
    public static func pretrainingTokens(_ dir: URL) -> Int? {
        guard let d = try? Data(contentsOf: ModelDirectory(dir).runRecord),
            let rec = try? JSONDecoder().decode([String: String].self, from: d),
            let end = rec["data_end"].flatMap(Int.init), let seq = rec["seq"].flatMap(Int.init)
        else { return nil }
        return end * seq
    }

    /// Writes `README.md` and `loss.svg` into the model directory and returns the Markdown.
    /// `threads` (from the run's `run.json` when absent) is stated when known.
    @discardableResult
    public static func write(model dir: URL, log: URL? = nil, corpus: CorpusFolder, notes: String = "", regenerate: String) throws -> String {
        let (m, tok) = try DecoderModel.loadWithTokenizer(directory: dir)
        let ppl = try withDevTexts(corpus) { dev in
            try ([CorpusFolder.pivot] + corpus.languages).map { l -> (String, PerplexityResult) in
                (l, try m.perplexity(file: dev[l]!, tokenizer: tok, seq: 128))
            }
        }
        var md = "# Base model\n\nA Llama-architecture decoder pretrained from scratch by `mixmoe pretrain`; it stands in for the paper's "
        md += "pretrained LLM (no real weights can be downloaded here).\n\n"
        md += configTable(m)
        md += try trainingSummary(
            dir: dir, log: log ?? ModelDirectory(dir).trainLog, what: "Training", chartTitle: "Pretraining loss (token-mean cross-entropy)")
        if !notes.isEmpty { md += notes + "\n\n" }
        md += "![loss curve](loss.svg)\n\n## Perplexity on the dev split (each language's side of `parallel/dev.L-en.tsv`)\n\n"
        md += "| language | tokens | perplexity |\n|---|---|---|\n"
        for (l, r) in ppl { md += String(format: "| %@ | %d | %.1f |\n", l, r.tokens, r.perplexity) }
        md += "\nRegenerate: `\(regenerate)`.\n"
        try AtomicFile.write(md, to: dir.appendingPathComponent("README.md"))
        return md
    }
}

extension ModelCard {
    /// The pretraining history of a model continued in segments (`models/base`, then each
    /// `--init-from` continuation): one loss curve over the cumulative tokens of all segments, and
    /// the dev perplexity per language of every kept checkpoint. `models` in pretraining order.
    public static func history(models: [URL], corpus: CorpusFolder, regenerate: String) throws -> (markdown: String, svg: String) {
        try withDevTexts(corpus) { dev in try history(models: models, dev: dev, languages: [CorpusFolder.pivot] + corpus.languages, regenerate: regenerate) }
    }

    /// ``history(models:corpus:regenerate:)`` written to `dir` as `HISTORY.md` and `history.svg`;
    /// returns the Markdown.
    public static func writeHistory(models: [URL], corpus: CorpusFolder, regenerate: String, to dir: URL) throws -> String {
        let (md, svg) = try history(models: models, corpus: corpus, regenerate: regenerate)
        try AtomicFile.write(svg, to: dir.appendingPathComponent("history.svg"))
        try AtomicFile.write(md, to: dir.appendingPathComponent("HISTORY.md"))
        return md
    }

    static func history(models: [URL], dev: [String: URL], languages langs: [String], regenerate: String) throws -> (markdown: String, svg: String) {
        var xs: [Double] = [], ys: [Double] = []
        var offset = 0
        var rows: [(name: String, tokens: Int, steps: Int, ppl: [Double])] = []
        for dir in models {
            let entries = try TrainingLog.read(ModelDirectory(dir).trainLog)
            let seen = TrainingLog.tokensSeen(entries)
            for (i, e) in entries.enumerated() where i % 10 == 0 || i == entries.count - 1 {
                xs.append(Double(offset + seen[i]) / 1e6); ys.append(e.loss)
            }
            offset += seen.last ?? 0
            let (m, tok) = try DecoderModel.loadWithTokenizer(directory: dir)
            let ppl = try langs.map { try m.perplexity(file: dev[$0]!, tokenizer: tok, seq: 128).perplexity }
            rows.append((dir.relativePath, offset, entries.last?.step ?? 0, ppl))
        }
        let svg = LineChart.svg(
            title: "Pretraining loss over all segments (token-mean cross-entropy)", x: xs, y: ys, xLabel: "tokens seen (M)", yLabel: "loss")
        var md = "# Pretraining history of the base model\n\n"
        md += "The base model was pretrained in segments, each continuing the previous checkpoint on the next windows of one "
        md += "seeded data order (no window seen twice; each segment a fresh cosine schedule and fresh AdamW moments). "
        md += "The curve joins the segments' logs over the cumulative tokens; the table gives each kept checkpoint's "
        md += "perplexity on the dev split (each language's side of `parallel/dev.L-en.tsv`, windows of 128 tokens).\n\n"
        md += "![loss over all segments](history.svg)\n\n"
        md +=
            "| checkpoint | tokens seen | steps in its segment | " + langs.joined(separator: " | ") + " |\n|---|---|---|"
            + String(repeating: "---|", count: langs.count) + "\n"
        for r in rows {
            md += "| `\(r.name)` | " + String(format: "%.1f M", Double(r.tokens) / 1e6) + " | \(r.steps) | "
            md += r.ppl.map { String(format: "%.1f", $0) }.joined(separator: " | ") + " |\n"
        }
        md += "\nRegenerate: `\(regenerate)`.\n"
        return (md, svg)
    }
}

extension ModelCard {
    /// Runs `body` with every language's dev text (each language's side of `parallel/dev.L-en.tsv`;
    /// English: all English sides) written to a temporary folder, removed afterwards.
    static func withDevTexts<T>(_ corpus: CorpusFolder, _ body: ([String: URL]) throws -> T) throws -> T {
        try corpus.check(splits: [.dev], mono: false)
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("mixmoe-dev-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: tmp) }
        return try body(try corpus.devTexts(into: tmp, englishPerLanguage: Int.max))
    }
}

extension ModelCard {
    /// Writes a translation model's card, `README.md` (configuration, training budget, the test
    /// scores per direction, and `samples` translations per direction beside their sources and
    /// references) and `loss.svg` (its fine-tuning loss, when the directory has
    /// `train_log.jsonl`) and `eval/report.json` (the scores and every hypothesis), and returns the
    /// Markdown. `results` must hold the hypotheses
    /// (`Evaluation.run(..., keepHypotheses: true)`) of the `bitexts` they were scored on.
    @discardableResult
    public static func translator(
        model dir: URL, results: [DirectionResult], bitexts: [Bitext], samples: Int = 3, notes: String = "", regenerate: String
    ) throws -> String {
        try AtomicFile.writeJSON(results, to: ModelDirectory(dir).eval.appendingPathComponent("report.json"))
        let m = try DecoderModel.load(directory: dir)
        var md = "# Translator\n\n"
        if !notes.isEmpty { md += notes + "\n\n" }
        md += configTable(m)
        let logURL = ModelDirectory(dir).trainLog
        if FileManager.default.fileExists(atPath: logURL.path) {
            md += try trainingSummary(dir: dir, log: logURL, what: "Fine-tuning", chartTitle: "Fine-tuning loss (mean cross-entropy per target token)")
            md += "![fine-tuning loss](loss.svg)\n\n"
        }
        let names = Set(bitexts.map(\.source)).sorted().joined(separator: ", ")
        md += "## Test scores\n\nOn \(names); BLEU and chrF as sacreBLEU computes them (signature `\(results.first?.bleuSignature ?? "")`; "
        md += "Chinese targets use the `zh` tokenizer), TER with sacreBLEU's defaults, METEOR as NLTK's.\n\n"
        md += Evaluation.markdown(results) + "\n"
        md += "## Sample translations\n\nThe first \(samples) test segments of every direction, as translated by this model.\n\n"
        let byDirection = Dictionary(results.map { ($0.direction, $0) }, uniquingKeysWith: { a, _ in a })
        for b in bitexts {
            for d in b.directions {
                guard let r = byDirection[d.description], let hyps = r.hypotheses else { continue }
                let segs = b.segments(d)
                md += "### \(d)\n\n| source | reference | this model |\n|---|---|---|\n"
                for i in 0..<min(samples, hyps.count, segs.count) {
                    md += "| \(cell(segs[i].src)) | \(cell(segs[i].tgt)) | \(cell(hyps[i])) |\n"
                }
                md += "\n"
            }
        }
        md += "Regenerate: `\(regenerate)`.\n"
        try AtomicFile.write(md, to: dir.appendingPathComponent("README.md"))
        return md
    }

    /// The architecture as a Markdown table.
    static func configTable(_ m: DecoderModel) -> String {
        let c = m.config
        var md = "| config | value |\n|---|---|\n"
        md += "| layers | \(c.numHiddenLayers) |\n| hidden size | \(c.hiddenSize) |\n| FFN size | \(c.intermediateSize) |\n"
        md += "| attention heads / KV heads | \(c.numAttentionHeads) / \(c.numKeyValueHeads) |\n| vocabulary | \(c.vocabSize) |\n"
        md += "| parameters | \(m.store.count) |\n| tied embeddings | \(c.tieWordEmbeddings) |\n\n"
        return md
    }

    /// Writes `dir/loss.svg` from a training log and returns one sentence: steps, tokens, time,
    /// threads (from the run's `run.json`), final loss.
    static func trainingSummary(dir: URL, log: URL, what: String, chartTitle: String) throws -> String {
        let entries = try TrainingLog.read(log)
        let (tokens, seconds) = TrainingLog.totals(entries)
        try AtomicFile.write(
            LineChart.svg(title: chartTitle, x: entries.map { Double($0.step) }, y: entries.map(\.loss), xLabel: "optimiser step", yLabel: "loss"),
            to: dir.appendingPathComponent("loss.svg"))
        let threads = RunRecord.read(dir)?["threads"]
        var md = String(format: "%@: %d optimiser steps, %.1f M tokens, %.1f h", what, entries.last?.step ?? 0, Double(tokens) / 1e6, seconds / 3600)
        md += (threads.map { " on \($0) thread" + ($0 == "1" ? "" : "s") } ?? "") + String(format: ". Final logged loss %.3f.\n\n", entries.last?.loss ?? .nan)
        return md
    }

    /// A Markdown table cell: pipes escaped, line breaks as spaces.
    static func cell(_ s: String) -> String {
        s.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
    }
}
