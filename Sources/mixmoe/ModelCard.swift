import ArgumentParser
import Foundation
import MixMoE
import MixMoECommandLine

struct ModelCardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model-card",
        abstract: "Write README.md and loss.svg for a pretrained model: config, data, steps, tokens, time, loss curve, dev perplexity per language.",
        discussion: """
            With --test: a translation model's card instead: its test scores per direction (BLEU, chrF, chrF++, TER, METEOR) \
            and sample translations beside their references; the scores and every translation also go to MODEL/eval/report.json.
            """)

    @OptionGroup var modelOption: ModelOption
    var model: String { modelOption.model }
    @Option(help: "train_log.jsonl of the run (default: the model directory's).") var log: String?
    @Option(help: "Corpus folder with parallel/dev.L-en.tsv for the per-language perplexity.") var data: String = "data/demo"
    @Option(help: "Markdown file whose text goes into the card: how the model was trained and why this size.") var notes: String?
    @Option(
        help:
            "With --history: the continuations of --model in pretraining order (repeatable); writes HISTORY.md and history.svg into --history-out instead of a card."
    )
    var history: [String] = []
    @Option(help: "Folder for HISTORY.md and history.svg.") var historyOut: String = "models/checkpoints"
    @Option(parsing: .upToNextOption, help: "Test corpora (TSV, A.xx,B.yy, ALMA JSON/JSONL): write a translator's card scored on them.")
    var test: [String] = []
    @Option(help: "With --test: use at most this many segments per direction.") var maxSegments: Int?
    @Option(help: "With --test: sample translations shown per direction.") var samples: Int = 3
    @OptionGroup var decode: DecodeOptions
    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        if let m = maxSegments, m < 1 { throw ValidationError("--max-segments must be at least 1") }
        guard samples >= 0 else { throw ValidationError("--samples must be at least 0") }
        guard test.isEmpty || history.isEmpty else { throw ValidationError("--test and --history write different documents; give one") }
    }

    func run() async throws {
        try await compute.run {
            let md = try !history.isEmpty ? historyDocument() : !test.isEmpty ? translatorCard() : pretrainedCard()
            print(md, terminator: "")
        }
    }

    /// The text of `--notes`, or nothing.
    func notesText() throws -> String {
        try notes.map { try String(contentsOfFile: $0, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
    }

    /// `--history`: HISTORY.md and history.svg of the continuations.
    func historyDocument() throws -> String {
        try ModelCard.writeHistory(
            models: ([model] + history).map { URL(fileURLWithPath: $0) }, corpus: CorpusFolder(URL(fileURLWithPath: data)),
            regenerate: "mixmoe model-card --model \(model) " + history.map { "--history \($0)" }.joined(separator: " ")
                + " --history-out \(historyOut) --data \(data)",
            to: URL(fileURLWithPath: historyOut))
    }

    /// `--test`: the translator's card, scored on the test corpora.
    func translatorCard() throws -> String {
        let bitexts = try test.map { try Corpus.readBitext($0) }  // bad data fails before the model loads
        let t = try decode.translator(modelOption)
        let rs = try evaluateWithProgress(t, bitexts: bitexts, maxSegments: maxSegments, keepHypotheses: true)
        return try ModelCard.translator(
            model: modelOption.url, results: rs, bitexts: bitexts, samples: samples, notes: try notesText(),
            regenerate: "mixmoe model-card --model \(model) --test " + test.joined(separator: " ")
                + (maxSegments.map { " --max-segments \($0)" } ?? "") + " --samples \(samples)" + (notes.map { " --notes \($0)" } ?? ""))
    }

    /// A pretrained model's card.
    func pretrainedCard() throws -> String {
        try ModelCard.write(
            model: URL(fileURLWithPath: model), log: log.map { URL(fileURLWithPath: $0) }, corpus: CorpusFolder(URL(fileURLWithPath: data)),
            notes: try notesText(), regenerate: "mixmoe model-card --model \(model) --data \(data)" + (notes.map { " --notes \($0)" } ?? ""))
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
                emitJSON(r)
            }
        }
    }
}
