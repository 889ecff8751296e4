import ArgumentParser
import Foundation
import MixMoE
import MixMoECommandLine

struct ModelCardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model-card",
        abstract: "Write README.md and loss.svg for a pretrained model: config, data, steps, tokens, time, loss curve, dev perplexity per language.")

    @Option(help: "Model directory (config.json, model.safetensors, tokenizer.json).") var model: String
    @Option(help: "train_log.jsonl of the run (default: the model directory's).") var log: String?
    @Option(help: "Corpus folder with parallel/dev.L-en.tsv for the per-language perplexity.") var data: String = "data/demo"
    @Option(help: "Markdown file whose text goes into the card: how the model was trained and why this size.") var notes: String?
    @Option(
        help:
            "With --history: the continuations of --model in pretraining order (repeatable); writes HISTORY.md and history.svg into --history-out instead of a card."
    )
    var history: [String] = []
    @Option(help: "Folder for HISTORY.md and history.svg.") var historyOut: String = "models/checkpoints"
    @OptionGroup var compute: ComputeOptions

    func run() async throws {
        try await compute.run {
            if !history.isEmpty {
                let dirs = ([model] + history).map { URL(fileURLWithPath: $0) }
                let (md, svg) = try ModelCard.history(
                    models: dirs, corpus: CorpusFolder(URL(fileURLWithPath: data)),
                    regenerate: "mixmoe model-card --model \(model) " + history.map { "--history \($0)" }.joined(separator: " ")
                        + " --history-out \(historyOut) --data \(data)")
                let out = URL(fileURLWithPath: historyOut)
                try AtomicFile.write(svg, to: out.appendingPathComponent("history.svg"))
                try AtomicFile.write(md, to: out.appendingPathComponent("HISTORY.md"))
                print(md, terminator: "")
                return
            }
            let notesText = try notes.map { try String(contentsOfFile: $0, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
            let md = try ModelCard.write(
                model: URL(fileURLWithPath: model), log: log.map { URL(fileURLWithPath: $0) },
                corpus: CorpusFolder(URL(fileURLWithPath: data)), notes: notesText,
                regenerate: "mixmoe model-card --model \(model) --data \(data)" + (notes.map { " --notes \($0)" } ?? ""))
            print(md, terminator: "")
        }
    }
}

struct Perplexity: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Held-out perplexity of a model on text files (lines packed into windows); one JSON line per file.")

    @OptionGroup var model: ModelOption
    @Option(help: "Tokens per window.") var seq: Int = 256
    @OptionGroup var compute: ComputeOptions
    @Argument(help: "Text files, one segment per line (TSV: every field).") var files: [String]

    func run() async throws {
        try await compute.run {
            let (m, tok) = try model.loadWithTokenizer()
            for f in files {
                let r = try m.perplexity(file: URL(fileURLWithPath: f), tokenizer: tok, seq: seq)
                emitJSON(["file": f, "tokens": r.tokens, "loss": r.loss, "perplexity": r.perplexity])
            }
        }
    }
}
