import Foundation

/// One `mixmoe train --stage N` of Mix-MoE: stage 1 trains the LM experts and their routers on
/// monolingual text; stage 2 copies them into the MT experts, freezes the LM side and trains the MT
/// side on parallel text. Checkpointed and resumable through ``TrainingRun``; under `mpirun` every
/// rank trains and rank 0 writes the model and its expert statistics.
public struct StageTrainingJob {
    public var stage: Int
    /// The upcycled (stage 1) or stage-1 (stage 2) model directory, as given.
    public var model: String
    /// A tokenizer.json instead of the model directory's.
    public var tokenizer: String?
    public var dtype = DType.f32
    public var out: URL
    /// Load-balance weight (nil: the model's `mix_moe.lb_coef`).
    public var lbCoef: Double?
    /// Stage 2: only these directions (nil: both directions of every corpus).
    public var directions: String?
    /// Stage 1: text files; stage 2: parallel corpora.
    public var files: [String]
    public var settings: TrainingSettings
    public var threads: Int
    public var log: (String) -> Void = { _ in }

    public init(stage: Int, model: String, out: URL, files: [String], settings: TrainingSettings, threads: Int) {
        self.stage = stage
        self.model = model
        self.out = out
        self.files = files
        self.settings = settings
        self.threads = threads
    }

    /// The paper's peak learning rates: 2e-4 in stage 1, 1e-5 in stage 2.
    public static func defaultLearningRate(stage: Int) -> Double { stage == 1 ? 2e-4 : 1e-5 }

    /// Plans (`plan` returns true for a dry run), loads, trains and saves; returns the expert-use
    /// table of the training data (empty on ranks other than 0).
    public func run(plan: (ModelConfig, FreezePlan) throws -> Bool, configure: (TrainingRun) -> Void) throws -> String {
        let src = URL(fileURLWithPath: model)
        let planned = try Upcycling.stageConfig(directory: src, stage: stage, name: model)
        if try plan(planned, stage == 1 ? .stage1 : .stage2) { return "" }
        let m = try Upcycling.prepare(directory: src, stage: stage, lbCoef: lbCoef, name: model, dtype: dtype)
        let tok = try m.loadTokenizer(directory: src, tokenizer: tokenizer)
        let data = try StageData.load(
            stage: stage, files: files, tokenizer: tok, model: m, seq: settings.seq, seed: settings.seed,
            directions: try Direction.parseList(directions))
        log(data.summary)
        log("stage \(stage): \(m.store.trainableCount) of \(m.store.count) parameters trainable; lr \(settings.lr)")
        m.moe.collectStats = true
        m.moe.statsLabel = "stage\(stage)-train"
        let record = [
            "command": "train --stage \(stage)", "model": try DecoderModel.weightsHash(directory: src),
            "data": try fileHashes(files), "lb_coef": String(m.config.mixMoE!.lbCoef), "directions": directions ?? "all",
            "threads": String(threads),
        ]
        let training = TrainingRun(model: m, settings: settings, source: data.source, record: record)
        configure(training)
        let trainingLog = try training.run()
        m.reduceExpertStatistics(training.collective)
        guard training.collective.isRoot else { return "" }  // rank 0 writes the model
        try data.recordExpertUse(training.trainer, maxTokens: settings.microTokens)
        try ModelDirectory(out).writeTrainedModel(m, tokenizer: .modelDirectory(src), log: trainingLog, record: training.record)
        try AtomicFile.writeJSON(m.expertStatistics(), to: ModelDirectory(out).expertStats)
        log("wrote \(out.path)")
        return m.expertStatisticsTable()
    }
}
