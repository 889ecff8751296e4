import Foundation

/// The main job on a corpus folder: the base model (the committed `models/checkpoints/base-c4`, or a tiny one
/// pretrained on the spot when absent), BLEU/chrF per direction, Mix-MoE upcycling, stage 1,
/// stage 2, and BLEU/chrF again.
public struct DemoPipeline {
    public var model: URL
    public var corpus: CorpusFolder
    /// Where the Mix-MoE model (and a fallback base model) are written.
    public var out: URL
    public var budget = Budget.demo
    public var testSegments = 30
    /// Pretraining steps of the fallback base model (8192 tokens each).
    public var pretrainSteps = 200
    public var log: (String) -> Void = { _ in }

    public init(model: URL, corpus: CorpusFolder, out: URL) {
        self.model = model; self.corpus = corpus; self.out = out
    }

    /// Scores of one direction before and after.
    public struct Row: Encodable, Sendable {
        public var direction: String
        public var base: DirectionResult
        public var mixMoE: DirectionResult
        enum CodingKeys: String, CodingKey { case base, mixMoE = "mix-moe" }
    }

    public struct Report: Encodable, Sendable {
        public var baseModel: String
        public var testSegmentsPerDirection: Int
        public var budget: Budget
        public var threads: Int
        public var wallTimeSeconds: Double
        public var rows: [Row]
        enum CodingKeys: String, CodingKey {
            case baseModel = "base_model", testSegmentsPerDirection = "test_segments_per_direction", budget, threads
            case wallTimeSeconds = "wall_time_s", rows = "directions"
        }

        /// `directions` as `{"de-en": {"base": {...}, "mix-moe": {...}}, ...}`.
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(baseModel, forKey: .baseModel); try c.encode(testSegmentsPerDirection, forKey: .testSegmentsPerDirection)
            try c.encode(budget, forKey: .budget); try c.encode(threads, forKey: .threads)
            try c.encode(wallTimeSeconds, forKey: .wallTimeSeconds)
            try c.encode(Dictionary(uniqueKeysWithValues: rows.map { ($0.direction, $0) }), forKey: .rows)
        }

        public var markdown: String {
            var md = "# Demo: base vs Mix-MoE on the shipped test split\n\n\(baseModel)\n\n"
            md += "\(testSegmentsPerDirection) test segments per direction, greedy decoding. BLEU: sacreBLEU-equivalent (13a; zh for Chinese targets).\n"
            md += "Budget: stage 1 \(budget.stage1Steps) steps, stage 2 \(budget.stage2Steps) steps of \(budget.shared.batchTokens) tokens, "
            md += "lr \(budget.lr1) / \(budget.lr2).\n\n"
            md += "| direction | base BLEU | base chrF | Mix-MoE BLEU | Mix-MoE chrF |\n|---|---|---|---|---|\n"
            for r in rows {
                md += String(format: "| %@ | %.2f | %.2f | %.2f | %.2f |\n", r.direction, r.base.bleu, r.base.chrf, r.mixMoE.bleu, r.mixMoE.chrf)
            }
            let n = Double(max(rows.count, 1))
            func mean(_ f: (Row) -> Double) -> Double { rows.map(f).reduce(0, +) / n }
            md += String(
                format: "| **mean** | %.2f | %.2f | %.2f | %.2f |\n", mean { $0.base.bleu }, mean { $0.base.chrf },
                mean { $0.mixMoE.bleu }, mean { $0.mixMoE.chrf })
            md += String(format: "\nWall time %.1f min on %d threads.\n", wallTimeSeconds / 60, threads)
            return md
        }
    }

    /// Runs the pipeline; the Mix-MoE model is saved to `out/mix-moe`.
    public func run() throws -> Report {
        try corpus.check(splits: [.train, .test])
        let t0 = monotonicSeconds()
        let train = try corpus.bitexts(.train), test = try corpus.bitexts(.test)
        let (base, tok, note) = try baseModel(train: train)
        log("evaluating the base model on \(test.count * 2) directions x \(testSegments) segments")
        let baseRes = try Evaluation.run(Translator(model: base, tokenizer: tok), bitexts: test, maxSegments: testSegments)
        var moe = MoEOptions()
        moe.every = base.config.numHiddenLayers >= 8 ? 4 : 2
        log(
            "Mix-MoE: upcycle (\(moe.experts) experts per group, \(moe.routerFeatures.rawValue) routers, every \(moe.every) layers), "
                + "stage 1: \(budget.stage1Steps) steps, stage 2: \(budget.stage2Steps) steps")
        let runner = try MethodRunner(base: base, tokenizer: tok, monoFiles: corpus.monoFiles, parallel: train, budget: budget, moe: moe, log: log)
        let mm = try runner.run(.mixMoE)
        let mmDir = out.appendingPathComponent("mix-moe")
        try mm.save(directory: mmDir)
        try HFDirectory.writeTokenizer(BPETokenizer.json(tok), to: mmDir)
        log("evaluating the Mix-MoE model")
        let mmRes = try Evaluation.run(Translator(model: mm, tokenizer: tok), bitexts: test, maxSegments: testSegments)
        return Report(
            baseModel: note, testSegmentsPerDirection: testSegments, budget: budget, threads: Parallel.threads,
            wallTimeSeconds: monotonicSeconds() - t0,
            rows: zip(baseRes, mmRes).map { Row(direction: $0.direction, base: $0, mixMoE: $1) })
    }

    /// The committed base model, or a tiny one pretrained now (tokenizer included) when absent.
    func baseModel(train: [Bitext]) throws -> (DecoderModel, BPETokenizer, String) {
        if FileManager.default.fileExists(atPath: ModelDirectory(model).weights.path) {
            let (m, tok) = try DecoderModel.loadWithTokenizer(directory: model)
            let seen = ModelCard.pretrainingTokens(model).map { String(format: ", pretrained on %.1f M tokens", Double($0) / 1e6) } ?? ""
            log("base model: \(model.path) (\(m.store.count) parameters\(seen))")
            return (m, tok, "Base model: `\(model.relativePath)` (\(m.store.count) parameters\(seen)).")
        }
        log("no base model at \(model.path): training a 4096-token tokenizer and pretraining a tiny base model for \(pretrainSteps) steps")
        let files = corpus.monoFiles + corpus.languages.map { corpus.parallel(.train, $0) }
        let trainer = BPETrainer(vocabSize: 4096, specialTokens: ["<|begin_of_text|>", "<|end_of_text|>", "<|pad|>"])
        var counts: [String: Int] = [:]
        for f in files { for l in try readLines(f) { for field in l.split(separator: "\t") { trainer.countWords(field, into: &counts) } } }
        let r = try trainer.train(wordCounts: counts)
        let tokURL = ModelDirectory(out).tokenizer
        try BPETokenizer.writeJSON(vocab: r.vocab, merges: r.merges, added: r.added, pattern: .llama3, bos: "<|begin_of_text|>", to: tokURL)
        let tok = try BPETokenizer.load(tokURL)
        var cfg = ModelConfig.tiny
        cfg.vocabSize = tok.vocabSize; cfg.bosTokenId = 0; cfg.eosTokenIds = [1]
        let stream = try PackedDataset.tokenize(files: files, tokenizer: tok, eos: 1)
        let base = DecoderModel(config: cfg, seed: 0)
        let settings = TrainingSettings(steps: pretrainSteps, lr: 2e-3)
        let run = TrainingRun(model: base, settings: settings, source: PackedDataset(tokens: stream, seq: settings.seq, seed: 0))
        run.progress = { p in if p.step % 50 == 0 || p.step == p.steps { self.log("  pretrain " + p.line) } }
        try run.run()
        try base.save(directory: out.appendingPathComponent("base"))
        try HFDirectory.writeTokenizer(Data(contentsOf: tokURL), to: out.appendingPathComponent("base"))
        return (
            base, tok,
            "Base model: a tiny model pretrained for \(pretrainSteps) steps inside the demo (no `\(model.relativePath)` found), so scores are near zero."
        )
    }
}
