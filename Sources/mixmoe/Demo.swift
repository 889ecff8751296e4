import ArgumentParser
import Foundation
import MixMoE

struct Perplexity: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Held-out perplexity of a model on text files (lines packed into windows); one JSON line per file.")

    @Option(help: "Model directory (with tokenizer.json, or give --tokenizer).")
    var model: String
    @Option(help: "tokenizer.json (default: the model directory's).")
    var tokenizer: String?
    @Option(help: "Tokens per window.")
    var seq: Int = 256
    @OptionGroup var compute: ComputeOptions
    @Argument(help: "Text files, one segment per line (TSV: every field).")
    var files: [String]

    func run() async throws {
        try compute.apply()
        try await reportingErrors {
            let dir = URL(fileURLWithPath: model)
            let m = try DecoderModel.load(directory: dir)
            let tok = try BPETokenizer.load(URL(fileURLWithPath: tokenizer ?? dir.appendingPathComponent("tokenizer.json").path))
            for f in files {
                let r = try m.perplexity(file: URL(fileURLWithPath: f), tokenizer: tok, seq: seq)
                emitJSON(["file": f, "tokens": r.tokens, "loss": r.loss, "perplexity": r.perplexity])
            }
        }
    }
}

/// The main job on the shipped data. Today: tokenizer, pretraining, held-out perplexity per
/// language. The Mix-MoE stages and translation scores join as they land (issue 8's demo).
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the pipeline on the shipped demo data (data/demo) and print a per-language table.")

    @Option(help: "Folder of the shipped demo data.")
    var data: String = "data/demo"
    @Option(help: "Output folder for the run.")
    var out: String = "runs/demo"
    @Option(help: "Pretraining steps of the tiny base model.")
    var steps: Int = 120
    @OptionGroup var compute: ComputeOptions

    func run() async throws {
        try compute.apply()
        try await reportingErrors {
            let root = URL(fileURLWithPath: data), outURL = URL(fileURLWithPath: out)
            let langs = ["en", "cs", "de", "ru", "tr", "zh", "fi", "et"]
            let mono = langs.map { root.appendingPathComponent("mono/\($0).txt") }
            for f in mono where !FileManager.default.fileExists(atPath: f.path) {
                throw DataError.missingFile(f.path + " (run from the repository root, or pass --data)")
            }
            let t0 = monotonicSeconds()
            // 1. tokenizer
            printErr("[1/3] training a 4096-token byte-level BPE tokenizer on \(data)/mono")
            let trainer = BPETrainer(vocabSize: 4096, specialTokens: ["<|begin_of_text|>", "<|end_of_text|>", "<|pad|>"])
            var counts: [String: Int] = [:]
            for f in mono { for l in try readLines(f) { trainer.countWords(Substring(l), into: &counts) } }
            let r = try trainer.train(wordCounts: counts)
            let tokURL = outURL.appendingPathComponent("tokenizer.json")
            try BPETokenizer.writeJSON(vocab: r.vocab, merges: r.merges, added: r.added, pattern: .llama3,
                                       bos: "<|begin_of_text|>", to: tokURL)
            let tok = try BPETokenizer.load(tokURL)
            // 2. pretrain
            printErr("[2/3] pretraining the tiny model for \(steps) steps on all 8 languages")
            var cfg = ModelConfig.tiny
            cfg.vocabSize = tok.vocabSize
            cfg.bosTokenId = 0
            cfg.eosTokenIds = [1]
            let stream = try PackedDataset.tokenize(files: mono, tokenizer: tok, eos: 1)
            let ds = PackedDataset(tokens: stream, seq: 128, seed: 0)
            let model = DecoderModel(config: cfg, seed: 0)
            let tr = Trainer(model: model, schedule: CosineSchedule(peak: 2e-3, totalSteps: steps))
            let start = monotonicSeconds()
            for s in 0..<steps {
                let st = try tr.trainStep([ds.nextBatch(sequences: 16), ds.nextBatch(sequences: 16)])
                if (s + 1) % 20 == 0 || s == 0 {
                    printErr(String(format: "  step %d/%d  loss %.3f  %.0f tok/s", s + 1, steps, st.loss,
                                    Double((s + 1) * 32 * 128) / (monotonicSeconds() - start)))
                }
            }
            let modelDir = outURL.appendingPathComponent("base")
            try model.save(directory: modelDir)
            try AtomicFile.write(Data(contentsOf: tokURL), to: modelDir.appendingPathComponent("tokenizer.json"))
            // 3. held-out perplexity per language (test split, both sides)
            printErr("[3/3] held-out perplexity on \(data)/parallel/test.*")
            var rows = "| language | held-out tokens | perplexity |\n|---|---|---|\n"
            let tmp = outURL.appendingPathComponent("heldout")
            try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
            var enLines: [String] = []
            for l in langs where l != "en" {
                let pairs = try readLines(root.appendingPathComponent("parallel/test.\(l)-en.tsv"))
                let cols = pairs.map { $0.split(separator: "\t", omittingEmptySubsequences: false) }
                enLines += cols.map { String($0[0]) }
                let f = tmp.appendingPathComponent("\(l).txt")
                try AtomicFile.write(cols.map { String($0.last!) }.joined(separator: "\n"), to: f)
                let p = try model.perplexity(file: f, tokenizer: tok, seq: 128)
                rows += String(format: "| %@ | %d | %.1f |\n", l, p.tokens, p.perplexity)
            }
            let enFile = tmp.appendingPathComponent("en.txt")
            try AtomicFile.write(enLines.joined(separator: "\n"), to: enFile)
            let p = try model.perplexity(file: enFile, tokenizer: tok, seq: 128)
            rows += String(format: "| en | %d | %.1f |\n", p.tokens, p.perplexity)
            print(rows, terminator: "")
            printErr(String(format: "done in %.1f min; model in %@", (monotonicSeconds() - t0) / 60, modelDir.path))
        }
    }
}
