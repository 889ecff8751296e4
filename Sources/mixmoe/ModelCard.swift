import ArgumentParser
import Foundation
import MixMoE

struct ModelCard: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model-card",
        abstract: "Write README.md and loss.svg for a pretrained model: config, data, steps, tokens, time, loss curve, dev perplexity per language.")

    @Option(help: "Model directory (config.json, model.safetensors, tokenizer.json).")
    var model: String
    @Option(help: "train_log.jsonl of the run (default: the model directory's).")
    var log: String?
    @Option(help: "Corpus folder with parallel/dev.L-en.tsv for the per-language perplexity.")
    var data: String = "../shared/data"
    @Option(help: "Free text: how the model was trained and why this size (Markdown).")
    var notes: String = ""
    @OptionGroup var compute: ComputeOptions

    func run() async throws {
        try compute.apply()
        try await reportingErrors {
            let dir = URL(fileURLWithPath: model)
            let (m, tok) = try DecoderModel.loadWithTokenizer(directory: dir)
            // training log: step, loss, tokens, elapsed (tokens and elapsed count from 0 again after each resume)
            var steps: [Double] = [], losses: [Double] = [], tokens = 0, lastTokens = 0, seconds = 0.0, lastElapsed = 0.0
            for line in try readLines(URL(fileURLWithPath: log ?? dir.appendingPathComponent("train_log.jsonl").path)) where !line.isEmpty {
                guard let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                      let s = o["step"] as? Int, let l = o["loss"] as? Double else { continue }
                steps.append(Double(s)); losses.append(l)
                let e = o["elapsed_s"] as? Double ?? 0
                seconds += e >= lastElapsed ? e - lastElapsed : e
                lastElapsed = e
                let t = o["tokens"] as? Int ?? 0
                tokens += t >= lastTokens ? t - lastTokens : t
                lastTokens = t
            }
            try AtomicFile.write(LineChart.svg(title: "Pretraining loss (token-mean cross-entropy)", x: steps, y: losses,
                                               xLabel: "optimiser step", yLabel: "loss"), to: dir.appendingPathComponent("loss.svg"))
            // dev perplexity per language
            let root = URL(fileURLWithPath: data)
            let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("mixmoe-card-\(getpid())")
            try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
            var ppl: [(String, Double, Int)] = []
            var en: [String] = []
            for l in ["cs", "de", "ru", "tr", "zh", "fi", "et"] {
                let b = try Corpus.readBitext(root.appendingPathComponent("parallel/dev.\(l)-en.tsv").path)
                en += b.pairs.map(\.a)
                let f = tmp.appendingPathComponent("\(l).txt")
                try AtomicFile.write(b.pairs.map(\.b).joined(separator: "\n") + "\n", to: f)
                let r = try m.perplexity(file: f, tokenizer: tok, seq: 128)
                ppl.append((l, r.perplexity, r.tokens))
            }
            let fe = tmp.appendingPathComponent("en.txt")
            try AtomicFile.write(en.joined(separator: "\n") + "\n", to: fe)
            let re = try m.perplexity(file: fe, tokenizer: tok, seq: 128)
            ppl.insert(("en", re.perplexity, re.tokens), at: 0)
            try? FileManager.default.removeItem(at: tmp)
            let c = m.config
            var md = "# Base model\n\nA Llama-architecture decoder pretrained from scratch by `mixmoe pretrain`; it stands in for the paper's "
            md += "pretrained LLM (no real weights can be downloaded here).\n\n"
            md += "| config | value |\n|---|---|\n"
            for (k, v) in [("layers", c.numHiddenLayers), ("hidden size", c.hiddenSize), ("FFN size", c.intermediateSize),
                           ("attention heads / KV heads", c.numAttentionHeads), ("vocabulary", c.vocabSize), ("parameters", m.store.count)] {
                md += "| \(k) | \(k == "attention heads / KV heads" ? "\(c.numAttentionHeads) / \(c.numKeyValueHeads)" : String(v)) |\n"
            }
            md += "| tied embeddings | \(c.tieWordEmbeddings) |\n\n"
            md += String(format: "Training: %d optimiser steps, %.1f M tokens, %.1f h on 2 CPU cores. Final logged loss %.3f.\n\n",
                         Int(steps.last ?? 0), Double(tokens) / 1e6, seconds / 3600, losses.last ?? .nan)
            if !notes.isEmpty { md += notes + "\n\n" }
            md += "![loss curve](loss.svg)\n\n## Perplexity on the dev split (each language's side of `parallel/dev.L-en.tsv`)\n\n"
            md += "| language | tokens | perplexity |\n|---|---|---|\n"
            for (l, p, n) in ppl { md += String(format: "| %@ | %d | %.1f |\n", l, n, p) }
            md += "\nRegenerate: `mixmoe model-card --model \(model) --data \(data)`.\n"
            try AtomicFile.write(md, to: dir.appendingPathComponent("README.md"))
            print(md, terminator: "")
        }
    }
}
