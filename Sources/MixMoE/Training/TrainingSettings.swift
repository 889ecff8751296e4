import Foundation

/// The optimisation settings of one training stage: how many steps, how many tokens each step
/// holds and how they are split into micro-batches, and the AdamW / schedule hyper-parameters.
/// Every command that trains (`pretrain`, `train`, the baselines, the demo, `bench train`) runs
/// through ``TrainingRun`` with one of these, so a flag means the same thing everywhere.
public struct TrainingSettings: Codable, Sendable, Equatable {
    /// Optimiser steps.
    public var steps: Int
    /// Tokens (padded) per optimiser step, accumulated over micro-batches.
    public var batchTokens: Int
    /// Tokens (padded) per micro-batch: memory against speed; the result does not depend on it
    /// beyond float rounding, since the loss is the token mean over the whole step.
    public var microTokens: Int
    /// Tokens per sequence: packed text windows; for translation pairs the longest prompt +
    /// translation kept (longer pairs are dropped and counted).
    public var seq: Int
    /// Peak learning rate of the cosine schedule.
    public var lr: Double
    /// Linear warm-up as a fraction of `steps`.
    public var warmup: Double
    public var weightDecay: Double
    /// Gradient clipping by global norm.
    public var clipNorm: Double
    /// Seed of the data order (and of fresh weights where a command creates them).
    public var seed: UInt64
    /// ZeRO-1 under data parallelism: each rank keeps the Adam moments of its shard only (the
    /// training is the same; not part of the coding keys, a property of the run, not the recipe).
    public var shardOptimizer = false

    enum CodingKeys: String, CodingKey {
        case steps, batchTokens = "batch_tokens", microTokens = "micro_tokens", seq, lr, warmup
        case weightDecay = "weight_decay", clipNorm = "clip_norm", seed
    }

    /// Defaults: 8192-token steps in 4096-token micro-batches of 128-token sequences, 3% warm-up,
    /// no weight decay (the paper's setting), clipping at 1.
    public init(
        steps: Int = 100, batchTokens: Int = 8192, microTokens: Int = 4096, seq: Int = 128, lr: Double = 1e-3,
        warmup: Double = 0.03, weightDecay: Double = 0, clipNorm: Double = 1, seed: UInt64 = 0
    ) {
        self.steps = steps; self.batchTokens = batchTokens; self.microTokens = microTokens; self.seq = seq; self.lr = lr
        self.warmup = warmup; self.weightDecay = weightDecay; self.clipNorm = clipNorm; self.seed = seed
    }

    /// Throws when the settings cannot describe a run (names the offending option).
    public func validate() throws {
        func need(_ ok: Bool, _ option: String, _ expected: String) throws {
            if !ok { throw SettingsError.invalid(option: option, expected: expected) }
        }
        try need(steps >= 0, "--steps", "a non-negative number of steps")
        try need(seq > 1, "--seq", "more than 1 token")
        try need(batchTokens >= seq, "--batch-tokens", "at least --seq (\(seq)) tokens")
        try need(microTokens >= seq, "--micro-tokens", "at least --seq (\(seq)) tokens")
        try need(lr > 0 && lr.isFinite, "--lr", "a positive learning rate")
        try need(warmup >= 0 && warmup <= 1, "--warmup", "a fraction between 0 and 1")
        try need(weightDecay >= 0, "--weight-decay", "a non-negative number")
    }

    /// The schedule these settings describe.
    public var schedule: CosineSchedule { CosineSchedule(peak: lr, totalSteps: steps, warmupFraction: warmup) }

    /// A trainer for `model` with these settings (trainable flags are the model's own), stepping
    /// with the ranks of `collective`.
    public func trainer(for model: DecoderModel, collective: Collective = SingleProcess()) -> Trainer {
        Trainer(
            model: model, schedule: schedule, weightDecay: Float(weightDecay), clipNorm: clipNorm, collective: collective,
            shardOptimizer: shardOptimizer)
    }

    /// The settings as strings, for a run record (a resume compares them).
    public var record: [String: String] {
        [
            "steps": String(steps), "batch_tokens": String(batchTokens), "micro_tokens": String(microTokens), "seq": String(seq),
            "lr": String(lr), "warmup": String(warmup), "weight_decay": String(weightDecay), "clip_norm": String(clipNorm),
            "seed": String(seed),
        ].merging(shardOptimizer ? ["zero1": "true"] : [:]) { a, _ in a }
    }
}

/// The budget of a comparison of methods (experiments, baselines, the demo): a monolingual stage
/// and a parallel stage sharing every other setting. Two-stage methods run `stage1Steps` then
/// `stage2Steps`; one-stage methods get `stage1Steps + stage2Steps` steps on their data.
public struct Budget: Codable, Sendable, Equatable {
    public var stage1Steps: Int
    public var stage2Steps: Int
    /// Peak learning rates of the monolingual and the parallel stage.
    public var lr1: Double
    public var lr2: Double
    /// Everything else (steps and lr of `shared` are unused).
    public var shared: TrainingSettings

    enum CodingKeys: String, CodingKey { case stage1Steps = "stage1_steps", stage2Steps = "stage2_steps", lr1, lr2, shared }

    public init(
        stage1Steps: Int = 100, stage2Steps: Int = 200, lr1: Double = 1e-3, lr2: Double = 1e-3,
        shared: TrainingSettings = TrainingSettings()
    ) {
        self.stage1Steps = stage1Steps; self.stage2Steps = stage2Steps; self.lr1 = lr1; self.lr2 = lr2; self.shared = shared
    }

    /// `mixmoe experiment` and `mixmoe baseline`: 100 + 200 steps of 8192 tokens, lr 1e-3 both stages.
    public static let experiments = Budget()
    /// `mixmoe demo`: 20 + 120 steps of 8192 tokens, lr 2e-3 (fits the demo's 15-minute bound).
    public static let demo = Budget(stage1Steps: 20, stage2Steps: 120, lr1: 2e-3, lr2: 2e-3)

    public var seed: UInt64 {
        get { shared.seed }
        set { shared.seed = newValue }
    }

    /// Settings of one stage of this budget.
    public func stage(steps: Int, lr: Double) -> TrainingSettings {
        var s = shared
        s.steps = steps; s.lr = lr
        return s
    }

    public func validate() throws {
        guard stage1Steps >= 0, stage2Steps >= 0, stage1Steps + stage2Steps > 0 else {
            throw SettingsError.invalid(option: "--stage1-steps/--stage2-steps", expected: "non-negative step counts, not both 0")
        }
        try stage(steps: 1, lr: lr1).validate()
        try stage(steps: 1, lr: lr2).validate()
    }
}
