import Foundation

/// One `mixmoe finetune`: dense full fine-tuning (the dense SFT baseline) on parallel corpora in
/// ALMA's prompt with the loss on the target, checkpointed and resumable, optionally evaluated on
/// dev pairs every N steps (the curve in `dev_loss.json`, the best step's model in `best/`).
public struct FinetuneJob {
    public var model: String
    public var tokenizer: String?
    public var dtype = DType.f32
    public var out: URL
    /// Parallel corpora (TSV, Moses pairs, ALMA JSON/JSONL).
    public var files: [String]
    /// Only these directions (nil: both directions of every corpus).
    public var directions: String?
    /// Held-out corpora: training pairs sharing a segment with one are dropped.
    public var exclude: [String] = []
    public var perPair = PairDirections.both
    /// Dev corpora and how often to evaluate on the first `devPairs` pairs of each direction.
    public var dev: [String] = []
    public var evalEvery = 0
    public var devPairs = 100
    /// True when the run resumes (the dev curve continues rather than restarts).
    public var resuming = false
    public var settings: TrainingSettings
    public var threads: Int
    public var log: (String) -> Void = { _ in }

    public init(model: String, out: URL, files: [String], settings: TrainingSettings, threads: Int) {
        self.model = model
        self.out = out
        self.files = files
        self.settings = settings
        self.threads = threads
    }

    /// ALMA's full-weight fine-tuning rate.
    public static let defaultLearningRate = 2e-5

    /// Plans (`plan` returns true for a dry run), loads, trains and saves.
    public func run(plan: (ModelConfig) throws -> Bool, configure: (TrainingRun) -> Void) throws {
        let src = URL(fileURLWithPath: model)
        if try plan(try ModelConfig.load(ModelDirectory(src).config)) { return }
        let m = try DecoderModel.load(directory: src, dtype: dtype, trainable: { _ in true })
        FreezePlan.full.apply(to: m)
        let tok = try m.loadTokenizer(directory: src, tokenizer: tokenizer)
        let data = try StageData.load(
            stage: 2, files: files, tokenizer: tok, model: m, seq: settings.seq, seed: settings.seed,
            directions: try Direction.parseList(directions), exclude: exclude, perPair: perPair)
        log(data.summary.replacingOccurrences(of: "stage 2 data", with: "fine-tuning data"))
        log("finetune: \(m.store.trainableCount) parameters trainable; lr \(settings.lr)")
        var record = [
            "command": "finetune", "model": try DecoderModel.weightsHash(directory: src), "data": try fileHashes(files),
            "directions": directions ?? "all", "pair_directions": perPair.rawValue, "threads": String(threads),
        ]
        if !exclude.isEmpty { record["exclude"] = try fileHashes(exclude) }
        let training = TrainingRun(model: m, settings: settings, source: data.source, record: record)
        configure(training)
        if evalEvery > 0 {
            let devSet = DevLoss.build(
                bitexts: try dev.map { try Corpus.readBitext($0) }, perDirection: devPairs, tokenizer: tok, eos: try m.config.trainingEOS(),
                maxTokens: settings.seq)
            let monitor = DevLossMonitor(dev: devSet, every: evalEvery, directory: out, label: "finetune") { model, dir in
                try model.save(directory: dir)
                try HFDirectory.copyTokenizer(from: src, to: dir)
            }
            monitor.observe(training, model: m, resumed: resuming, note: log)
        }
        let trainingLog = try training.run()
        guard training.collective.isRoot else { return }  // rank 0 writes the model
        try ModelDirectory(out).writeTrainedModel(m, tokenizer: .modelDirectory(src), log: trainingLog, record: training.record)
        log("wrote \(out.path)")
    }
}
