import Foundation

/// A pretrained model's card: `README.md` (configuration, training data and budget, time, dev
/// perplexity per language) and `loss.svg` (the loss curve from `train_log.jsonl`).
public enum ModelCard {
    /// Tokens a checkpoint's pretraining has seen in all, from its `run.json` (`mixmoe pretrain`
    /// continues one seeded window order, so `data_end` windows of `seq` tokens were read);
    /// nil when the directory has no such record.
    public static func pretrainingTokens(_ dir: URL) -> Int? {
        guard let d = try? Data(contentsOf: dir.appendingPathComponent("run.json")),
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
        let entries = try TrainingLog.read(log ?? dir.appendingPathComponent("train_log.jsonl"))
        let (tokens, seconds) = TrainingLog.totals(entries)
        try AtomicFile.write(
            LineChart.svg(
                title: "Pretraining loss (token-mean cross-entropy)", x: entries.map { Double($0.step) },
                y: entries.map(\.loss), xLabel: "optimiser step", yLabel: "loss"),
            to: dir.appendingPathComponent("loss.svg"))
        try corpus.check(splits: [.dev], mono: false)
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("mixmoe-card-\(getpid())")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: tmp) }
        let dev = try corpus.devTexts(into: tmp, englishPerLanguage: Int.max)
        let ppl = try ([CorpusFolder.pivot] + corpus.languages).map { l -> (String, PerplexityResult) in
            (l, try m.perplexity(file: dev[l]!, tokenizer: tok, seq: 128))
        }
        let threads = RunRecord.read(dir)?["threads"]
        let c = m.config
        var md = "# Base model\n\nA Llama-architecture decoder pretrained from scratch by `mixmoe pretrain`; it stands in for the paper's "
        md += "pretrained LLM (no real weights can be downloaded here).\n\n"
        md += "| config | value |\n|---|---|\n"
        md += "| layers | \(c.numHiddenLayers) |\n| hidden size | \(c.hiddenSize) |\n| FFN size | \(c.intermediateSize) |\n"
        md += "| attention heads / KV heads | \(c.numAttentionHeads) / \(c.numKeyValueHeads) |\n| vocabulary | \(c.vocabSize) |\n"
        md += "| parameters | \(m.store.count) |\n| tied embeddings | \(c.tieWordEmbeddings) |\n\n"
        md += String(format: "Training: %d optimiser steps, %.1f M tokens, %.1f h", entries.last?.step ?? 0, Double(tokens) / 1e6, seconds / 3600)
        md += (threads.map { " on \($0) thread" + ($0 == "1" ? "" : "s") } ?? "") + String(format: ". Final logged loss %.3f.\n\n", entries.last?.loss ?? .nan)
        if !notes.isEmpty { md += notes + "\n\n" }
        md += "![loss curve](loss.svg)\n\n## Perplexity on the dev split (each language's side of `parallel/dev.L-en.tsv`)\n\n"
        md += "| language | tokens | perplexity |\n|---|---|---|\n"
        for (l, r) in ppl { md += String(format: "| %@ | %d | %.1f |\n", l, r.tokens, r.perplexity) }
        md += "\nRegenerate: `\(regenerate)`.\n"
        try AtomicFile.write(md, to: dir.appendingPathComponent("README.md"))
        return md
    }
}

/// `run.json` beside a trained model: the run record (settings, data identity, threads).
public enum RunRecord {
    public static func write(_ record: [String: String], to dir: URL) throws {
        try AtomicFile.write(try sortedJSON(record), to: dir.appendingPathComponent("run.json"))
    }

    public static func read(_ dir: URL) -> [String: String]? {
        guard let d = try? Data(contentsOf: dir.appendingPathComponent("run.json")) else { return nil }
        return try? JSONDecoder().decode([String: String].self, from: d)
    }
}
