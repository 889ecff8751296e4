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
            try m.checkTokenizer(tok, file: tokenizer ?? dir.appendingPathComponent("tokenizer.json").path)
            for f in files {
                let r = try m.perplexity(file: URL(fileURLWithPath: f), tokenizer: tok, seq: seq)
                emitJSON(["file": f, "tokens": r.tokens, "loss": r.loss, "perplexity": r.perplexity])
            }
        }
    }
}

/// The main job on the shipped data: a base model, Mix-MoE upcycling, stage 1, stage 2, and BLEU /
/// chrF per direction for both. Until the embedded pretrained base model lands (issue 8), the base
/// model is pretrained here for a few minutes, so absolute scores are low.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run base model -> upcycle -> stage 1 -> stage 2 -> evaluation on the shipped data (data/demo); writes reports/demo.{json,md}.")

    @Option(help: "Folder of the shipped demo data.")
    var data: String = "data/demo"
    @Option(help: "Output folder for models.")
    var out: String = "runs/demo"
    @Option(help: "Folder for reports/demo.json and reports/demo.md.")
    var reports: String = "reports"
    @Option(help: "Pretraining steps of the base model (8192 tokens each).")
    var pretrainSteps: Int = 200
    @Option(help: "Stage-1 steps (monolingual).")
    var stage1Steps: Int = 30
    @Option(help: "Stage-2 steps (parallel).")
    var stage2Steps: Int = 200
    @Option(help: "Test segments per direction.")
    var testSegments: Int = 50
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

            // 1. tokenizer on all shipped text
            say("1/6 tokenizer: byte-level BPE, 4096 tokens, on \(data)")
            let trainer = BPETrainer(vocabSize: 4096, specialTokens: ["<|begin_of_text|>", "<|end_of_text|>", "<|pad|>"])
            var counts: [String: Int] = [:]
            for f in mono + train.map(URL.init(fileURLWithPath:)) {
                for l in try readLines(f) { for field in l.split(separator: "\t") { trainer.countWords(field, into: &counts) } }
            }
            let r = try trainer.train(wordCounts: counts)
            let tokURL = outURL.appendingPathComponent("tokenizer.json")
            try BPETokenizer.writeJSON(vocab: r.vocab, merges: r.merges, added: r.added, pattern: .llama3, bos: "<|begin_of_text|>", to: tokURL)
            let tok = try BPETokenizer.load(tokURL)

            // 2. base model: pretrained on monolingual text and both sides of the parallel training data
            say("2/6 base model: tiny config, \(pretrainSteps) pretraining steps")
            var cfg = ModelConfig.tiny
            cfg.vocabSize = tok.vocabSize; cfg.bosTokenId = 0; cfg.eosTokenIds = [1]
            let stream = try PackedDataset.tokenize(files: mono + train.map(URL.init(fileURLWithPath:)), tokenizer: tok, eos: 1)
            let base = DecoderModel(config: cfg, seed: 0)
            try trainLoop(Trainer(model: base, schedule: CosineSchedule(peak: 2e-3, totalSteps: pretrainSteps)),
                          PackedDataset(tokens: stream, seq: 128, seed: 0), steps: pretrainSteps, say: say)
            let baseDir = outURL.appendingPathComponent("base")
            try base.save(directory: baseDir)
            try AtomicFile.write(Data(contentsOf: tokURL), to: baseDir.appendingPathComponent("tokenizer.json"))

            // 3. evaluate the base model
            let bitexts = try test.map { try Corpus.readBitext($0) }
            say("3/6 evaluating the base model on 14 directions x \(testSegments) segments")
            let baseRes = try Evaluation.run(Translator(model: base, tokenizer: tok), bitexts: bitexts, maxSegments: testSegments)

            // 4-5. upcycle, stage 1 (monolingual), stage 2 (parallel)
            say("4/6 upcycle (4 experts per group, MoE layers 1 and 3, FFT routers) and stage 1: \(stage1Steps) steps")
            let up = try Upcycling.upcycle(base, MixMoEConfig(expertsPerGroup: 4, moeLayers: [1, 3], hiddenSize: cfg.hiddenSize))
            FreezePlan.stage1.apply(to: up)
            let monoStream = try PackedDataset.tokenize(files: mono, tokenizer: tok, eos: 1)
            try trainLoop(Trainer(model: up, schedule: CosineSchedule(peak: 2e-3, totalSteps: stage1Steps)),
                          PackedDataset(tokens: monoStream, seq: 128, seed: 1), steps: stage1Steps, say: say)
            say("5/6 stage 2: MT experts on parallel data, 14 directions, \(stage2Steps) steps")
            let s2 = try Upcycling.beginStage2(up)
            FreezePlan.stage2.apply(to: s2)
            let (exs, _) = MTDataset.build(bitexts: try train.map { try Corpus.readBitext($0) }, directions: nil, tokenizer: tok, eos: 1, maxTokens: 128)
            try trainLoop(Trainer(model: s2, schedule: CosineSchedule(peak: 2e-3, totalSteps: stage2Steps)),
                          MTDataset(examples: exs, seed: 2, pad: 2), steps: stage2Steps, say: say)
            let mmDir = outURL.appendingPathComponent("mix-moe")
            try s2.save(directory: mmDir)
            try AtomicFile.write(Data(contentsOf: tokURL), to: mmDir.appendingPathComponent("tokenizer.json"))

            // 6. evaluate Mix-MoE, write the reports
            say("6/6 evaluating the Mix-MoE model")
            let mmRes = try Evaluation.run(Translator(model: s2, tokenizer: tok), bitexts: bitexts, maxSegments: testSegments)
            var dirs: [String: Any] = [:]
            var md = "# Demo: base vs Mix-MoE on the shipped test split\n\n"
            md += "\(testSegments) test segments per direction, greedy decoding. BLEU: sacreBLEU-equivalent (13a; zh for Chinese targets).\n\n"
            md += "| direction | base BLEU | base chrF | Mix-MoE BLEU | Mix-MoE chrF |\n|---|---|---|---|---|\n"
            for (b, m) in zip(baseRes, mmRes) {
                dirs[b.direction] = ["base": ["bleu": b.bleu, "chrf": b.chrf], "mix-moe": ["bleu": m.bleu, "chrf": m.chrf]]
                md += String(format: "| %@ | %.2f | %.2f | %.2f | %.2f |\n", b.direction, b.bleu, b.chrf, m.bleu, m.chrf)
            }
            func mean(_ rs: [DirectionResult], _ k: KeyPath<DirectionResult, Double>) -> Double { rs.map { $0[keyPath: k] }.reduce(0, +) / Double(max(rs.count, 1)) }
            md += String(format: "| **mean** | %.2f | %.2f | %.2f | %.2f |\n", mean(baseRes, \.bleu), mean(baseRes, \.chrf), mean(mmRes, \.bleu), mean(mmRes, \.chrf))
            md += String(format: "\nWall time %.1f min on %d threads. Models: %@/base, %@/mix-moe.\n", (monotonicSeconds() - t0) / 60, compute.threads, out, out)
            let repURL = URL(fileURLWithPath: reports)
            let json = try JSONSerialization.data(withJSONObject: ["directions": dirs, "test_segments_per_direction": testSegments,
                                                                   "wall_time_s": monotonicSeconds() - t0], options: [.prettyPrinted, .sortedKeys])
            try AtomicFile.write(json, to: repURL.appendingPathComponent("demo.json"))
            try AtomicFile.write(md, to: repURL.appendingPathComponent("demo.md"))
            print(md, terminator: "")
        }
    }

    func trainLoop(_ t: Trainer, _ src: BatchSource, steps: Int, say: (String) -> Void) throws {
        let loop = TrainingLoop(trainer: t, source: src, stepTokens: 8192, microTokens: 4096)
        try loop.run(steps: steps) { p in
            if p.step % 50 == 0 || p.step == p.steps {
                say(String(format: "   step %d/%d  loss %.3f  %.0f tok/s", p.step, p.steps, p.stats.loss, p.tokensPerSecond))
            }
        }
    }
}
