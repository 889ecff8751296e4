import Foundation

/// `mixmoe bench train`: full training steps (forward, backward, clip, AdamW) of a model of a given
/// shape on fixed pseudo-random tokens, through the same ``TrainingRun`` every command trains with.
/// Under `mpirun` the global batch is split over the ranks.
public struct TrainingBenchmark {
    /// What the step trains: full, lora, or a Mix-MoE stage (stage1, stage2).
    public var method: FreezePlan
    /// Mix-MoE options of stage1/stage2 runs.
    public var moe = MoEOptions()
    public var explicitRouter = false
    public var batch = 8
    public var seq = 256
    public var dtype = DType.f32
    public var zero1 = false
    public var warmup = 1
    public var reps = 5
    /// Also total the profiled regions of the timed steps.
    public var profile = false

    public init(method: FreezePlan) { self.method = method }

    /// The methods a training step can be timed for.
    public static let methods: [FreezePlan] = [.full, .lora, .stage1, .stage2]

    /// What the timed steps measured.
    public struct Result: Sendable {
        public var stepSeconds: [Double]
        public var trainableParams: Int
        public var buffersPeakBytes: Int
        /// Share of the timed steps' time in collectives, and their bytes per step per rank.
        public var collectiveShare: Double
        public var collectiveBytesPerStep: Double
        /// Seconds per profiled region over the timed steps (empty without `profile`).
        public var profile: [String: Double]
    }

    /// The model of the method, initialised directly (random experts time like sliced ones), so no
    /// dense or stage-1 copy inflates the peak memory.
    func model(_ cfg: ModelConfig) throws -> DecoderModel {
        let model: DecoderModel
        switch method {
        case .lora:
            model = try Baselines.addLoRA(DecoderModel(config: cfg, seed: 1))
            FreezePlan.lora.apply(to: model)
        case .stage1, .stage2:
            var c = cfg
            c.mixMoE = try moe.config(for: cfg)
            c.mixMoE!.stage = method == .stage1 ? 1 : 2
            model = DecoderModel(config: c, seed: 1)
            method.apply(to: model)
            model.moe.explicitRouter = explicitRouter
        case .full:
            model = DecoderModel(config: cfg, seed: 1)
        default:
            throw SettingsError.invalid(option: "--method", expected: "one of \(Self.methods.map(\.rawValue).joined(separator: ", "))")
        }
        model.store.holdFrozenMatrices(as: dtype)
        return model
    }

    /// Times `reps` steps after `warmup` untimed ones on a model of shape `cfg`.
    public func run(_ cfg: ModelConfig) throws -> Result {
        let world = Distributed.world
        guard batch % world.size == 0 else {
            throw SettingsError.invalid(option: "--batch", expected: "a multiple of the \(world.size) ranks (got \(batch))")
        }
        let model = try model(cfg)
        let n = batch * seq
        let ids = Benchmark.tokens(n, vocab: cfg.vocabSize)
        var targets = Array(ids.dropFirst()) + [-1]
        for s in 1...batch { targets[s * seq - 1] = -1 }
        // one micro-batch, or under mpirun one per rank (the same global batch, split)
        let per = batch / world.size
        let micro = (0..<world.size).map { r in
            let span = (r * per * seq)..<((r + 1) * per * seq)
            return TokenBatch(ids: Array(ids[span]), targets: Array(targets[span]), batch: per, seq: seq)
        }
        var settings = TrainingSettings(steps: warmup + reps, batchTokens: n, microTokens: n / world.size, seq: seq, lr: 1e-4, warmup: 0)
        settings.shardOptimizer = zero1
        let run = TrainingRun(model: model, settings: settings, source: RepeatingSource(micro))
        var times: [Double] = []
        let warm = warmup, prof = profile
        if warm == 0 { Profile.enabled = prof; Profile.reset() }
        var trafficAtWarm = CollectiveTraffic()
        run.progress = { p in
            if p.step > warm { times.append(p.stepSeconds) }
            if p.step == warm { Profile.enabled = prof; Profile.reset(); trafficAtWarm = world.traffic }
        }
        try run.run()
        Profile.enabled = false
        let traffic = world.traffic, total = times.reduce(0, +)
        return Result(
            stepSeconds: times, trainableParams: model.store.trainableCount, buffersPeakBytes: FloatBuffer.peakBytes,
            collectiveShare: (traffic.seconds - trafficAtWarm.seconds) / max(total, 1e-9),
            collectiveBytesPerStep: Double(traffic.bytes - trafficAtWarm.bytes) / Double(max(1, times.count)),
            profile: profile ? Profile.totals : [:])
    }
}
