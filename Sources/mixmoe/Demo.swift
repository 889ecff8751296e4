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
            let (m, tok) = try DecoderModel.loadWithTokenizer(directory: URL(fileURLWithPath: model), tokenizer: tokenizer)
            for f in files {
                let r = try m.perplexity(file: URL(fileURLWithPath: f), tokenizer: tok, seq: seq)
                emitJSON(["file": f, "tokens": r.tokens, "loss": r.loss, "perplexity": r.perplexity])
            }
        }
    }
}

/// The main job on the shipped data: the base model (the committed `models/base`, or one
/// pretrained here for a few minutes when it is absent), BLEU/chrF per direction, Mix-MoE upcycling,
/// stage 1, stage 2, and BLEU/chrF again; writes reports/demo.{json,md}.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Base model -> upcycle -> stage 1 -> stage 2 -> evaluation on the shipped data (data/demo); writes reports/demo.{json,md}.")

    @Option(help: "Base model directory; when it has no weights, a tiny base model is pretrained first.")
    var model: String = "models/base"
    @Option(help: "Folder of the shipped demo data.")
    var data: String = "data/demo"
    @Option(help: "Output folder for models.")
    var out: String = "runs/demo"
    @Option(help: "Folder for reports/demo.json and reports/demo.md.")
    var reports: String = "reports"
    @Option(help: "Pretraining steps when no base model exists (8192 tokens each).")
    var pretrainSteps: Int = 200
    @Option(help: "Stage-1 steps (monolingual).")
    var stage1Steps: Int = 20
    @Option(help: "Stage-2 steps (parallel).")
    var stage2Steps: Int = 120
    @Option(help: "Tokens per step.")
    var batchTokens: Int = 8192
    @Option(help: "Peak learning rate of both stages.")
    var lr: Double = 2e-3
    @Option(help: "Test segments per direction.")
    var testSegments: Int = 30
    @OptionGroup var compute: ComputeOptions

    static let langs = ["cs", "de", "ru", "tr", "zh", "fi", "et"]

    func run() async throws {
        try compute.apply()
        try await reportingErrors {
            let root = URL(fileURLWithPath: data), outURL = URL(fileURLWithPath: out)
            let mono = (["en"] + Self.langs).map { root.appendingPathComponent("mono/\($0).txt") }
            let train = Self.langs.map { root.appendingPathComponent("parallel/train.\($0)-en.tsv").path }
            let test = Self.langs.map { root.appendingPathComponent("parallel/test.\($0)-en.tsv").path }
            for f in mono.map(\.path) + train + test where !FileManager.default.fileExists(atPath: f) {
                throw DataError.missingFile(f + " (run from the repository root, or pass --data)")
            }
            let t0 = monotonicSeconds()
            func say(_ s: String) { printErr(String(format: "[%5.1f min] ", (monotonicSeconds() - t0) / 60) + s) }

            let (base, tok, baseNote) = try baseModel(mono: mono, train: train, out: outURL, say: say)
            let bitexts = try test.map { try Corpus.readBitext($0) }
            say("evaluating the base model on 14 directions x \(testSegments) segments")
            let baseRes = try Evaluation.run(Translator(model: base, tokenizer: tok), bitexts: bitexts, maxSegments: testSegments)

            var budget = Budget()
            budget.stage1Steps = stage1Steps; budget.stage2Steps = stage2Steps; budget.batchTokens = batchTokens
            budget.microTokens = min(4096, batchTokens); budget.lr1 = lr; budget.lr2 = lr
            var moe = MoEOptions()
            moe.every = base.config.numHiddenLayers >= 8 ? 4 : 2
            say("Mix-MoE: upcycle (4 experts per group, FFT routers, every \(moe.every) layers), stage 1: \(stage1Steps) steps, stage 2: \(stage2Steps) steps")
            let runner = try MethodRunner(base: base, tokenizer: tok, monoFiles: mono, parallel: try train.map { try Corpus.readBitext($0) },
                                          budget: budget, moe: moe) { say($0) }
            let mm = try runner.run(.mixMoE)
            let mmDir = outURL.appendingPathComponent("mix-moe")
            try mm.save(directory: mmDir)
            try AtomicFile.write(BPETokenizer.json(tok), to: mmDir.appendingPathComponent("tokenizer.json"))

            say("evaluating the Mix-MoE model")
            let mmRes = try Evaluation.run(Translator(model: mm, tokenizer: tok), bitexts: bitexts, maxSegments: testSegments)
            var dirs: [String: Any] = [:]
            var md = "# Demo: base vs Mix-MoE on the shipped test split\n\n\(baseNote)\n\n"
            md += "\(testSegments) test segments per direction, greedy decoding. BLEU: sacreBLEU-equivalent (13a; zh for Chinese targets).\n\n"
            md += "| direction | base BLEU | base chrF | Mix-MoE BLEU | Mix-MoE chrF |\n|---|---|---|---|---|\n"
            for (b, m) in zip(baseRes, mmRes) {
                dirs[b.direction] = ["base": ["bleu": b.bleu, "chrf": b.chrf], "mix-moe": ["bleu": m.bleu, "chrf": m.chrf]]
                md += String(format: "| %@ | %.2f | %.2f | %.2f | %.2f |\n", b.direction, b.bleu, b.chrf, m.bleu, m.chrf)
            }
            func mean(_ rs: [DirectionResult], _ k: KeyPath<DirectionResult, Double>) -> Double { rs.map { $0[keyPath: k] }.reduce(0, +) / Double(max(rs.count, 1)) }
            md += String(format: "| **mean** | %.2f | %.2f | %.2f | %.2f |\n", mean(baseRes, \.bleu), mean(baseRes, \.chrf), mean(mmRes, \.bleu), mean(mmRes, \.chrf))
            md += String(format: "\nWall time %.1f min on %d threads. Mix-MoE model: %@/mix-moe.\n", (monotonicSeconds() - t0) / 60, compute.threads, out)
            let repURL = URL(fileURLWithPath: reports)
            let json = try JSONSerialization.data(withJSONObject: ["directions": dirs, "test_segments_per_direction": testSegments,
                                                                   "base_model": baseNote, "wall_time_s": monotonicSeconds() - t0],
                                                  options: [.prettyPrinted, .sortedKeys])
            try AtomicFile.write(json, to: repURL.appendingPathComponent("demo.json"))
            try AtomicFile.write(md, to: repURL.appendingPathComponent("demo.md"))
            print(md, terminator: "")
        }
    }

    /// The committed base model, or a tiny one pretrained now (tokenizer included) when absent.
    func baseModel(mono: [URL], train: [String], out: URL, say: (String) -> Void) throws -> (DecoderModel, BPETokenizer, String) {
        let dir = URL(fileURLWithPath: model)
        if FileManager.default.fileExists(atPath: dir.appendingPathComponent("model.safetensors").path) {
            let (m, tok) = try DecoderModel.loadWithTokenizer(directory: dir)
            say("base model: \(model) (\(m.store.count) parameters)")
            return (m, tok, "Base model: `\(model)` (\(m.store.count) parameters).")
        }
        say("no base model at \(model): training a 4096-token tokenizer and pretraining a tiny base model for \(pretrainSteps) steps")
        let trainer = BPETrainer(vocabSize: 4096, specialTokens: ["<|begin_of_text|>", "<|end_of_text|>", "<|pad|>"])
        var counts: [String: Int] = [:]
        for f in mono + train.map(URL.init(fileURLWithPath:)) {
            for l in try readLines(f) { for field in l.split(separator: "\t") { trainer.countWords(field, into: &counts) } }
        }
        let r = try trainer.train(wordCounts: counts)
        let tokURL = out.appendingPathComponent("tokenizer.json")
        try BPETokenizer.writeJSON(vocab: r.vocab, merges: r.merges, added: r.added, pattern: .llama3, bos: "<|begin_of_text|>", to: tokURL)
        let tok = try BPETokenizer.load(tokURL)
        var cfg = ModelConfig.tiny
        cfg.vocabSize = tok.vocabSize; cfg.bosTokenId = 0; cfg.eosTokenIds = [1]
        let stream = try PackedDataset.tokenize(files: mono + train.map(URL.init(fileURLWithPath:)), tokenizer: tok, eos: 1)
        let base = DecoderModel(config: cfg, seed: 0)
        let t = Trainer(model: base, schedule: CosineSchedule(peak: 2e-3, totalSteps: pretrainSteps))
        let loop = TrainingLoop(trainer: t, source: PackedDataset(tokens: stream, seq: 128, seed: 0), stepTokens: 8192, microTokens: 4096)
        try loop.run(steps: pretrainSteps) { p in
            if p.step % 50 == 0 || p.step == p.steps { say(String(format: "  pretrain step %d/%d loss %.3f %.0f tok/s", p.step, p.steps, p.stats.loss, p.tokensPerSecond)) }
        }
        try base.save(directory: out.appendingPathComponent("base"))
        try AtomicFile.write(Data(contentsOf: tokURL), to: out.appendingPathComponent("base/tokenizer.json"))
        return (base, tok, "Base model: a tiny model pretrained for \(pretrainSteps) steps inside the demo (no `\(model)` found), so scores are near zero.")
    }
}
