import Foundation

/// Runs an experiment: every variant under every seed, evaluated on the test directions.
public final class ExperimentRunner {
    public let name: ExperimentName
    public let baseModel: DecoderModel
    public let tokenizer: BPETokenizer
    public let monoFiles: [URL]
    public let monoDev: [String: URL]  // language -> held-out text for perplexity
    public let train: [Bitext]
    public let test: [Bitext]
    public var budget: Budget
    public var seeds: [UInt64]
    public var testSegments: Int
    public var log: (String) -> Void

    public init(
        name: ExperimentName, baseModel: DecoderModel, tokenizer: BPETokenizer, monoFiles: [URL], monoDev: [String: URL],
        train: [Bitext], test: [Bitext], budget: Budget, seeds: [UInt64], testSegments: Int, log: @escaping (String) -> Void
    ) {
        self.name = name; self.baseModel = baseModel; self.tokenizer = tokenizer; self.monoFiles = monoFiles; self.monoDev = monoDev
        self.train = train; self.test = test; self.budget = budget; self.seeds = seeds; self.testSegments = testSegments; self.log = log
    }

    /// Where finished runs are stored and looked up (nil: no reuse).
    public var cache: RunCache?
    /// Methods trained at their own peak rates instead of the budget's.
    public var methodLearningRates: [MethodLearningRate] = []
    /// Report from the cache alone: a run it lacks is recorded in ``missing`` instead of trained.
    public var cachedOnly = false
    /// The runs ``cachedOnly`` skipped, as "variant (seed N)".
    public private(set) var missing: [String] = []

    public func run(_ variants: [Variant]) throws -> [RunResult] {
        var out: [RunResult] = []
        for seed in seeds {
            var b = budget
            b.seed = seed
            let runner = try MethodRunner(base: baseModel, tokenizer: tokenizer, monoFiles: monoFiles, parallel: train, budget: b, log: log)
            let fp = try RunCache.fingerprint(
                base: baseModel, monoStream: runner.monoStream, examples: runner.examples, test: test,
                testSegments: testSegments, dev: monoDev)
            for v in variants {
                // The base model is not trained: greedy decoding gives every seed the same result,
                // so it is evaluated once, under the first seed.
                if v.method == .base, seed != seeds.first { continue }
                let bv = methodLearningRates.last { $0.method == v.method }?.applied(to: b) ?? b
                let key = try RunCache.key(fingerprint: fp, method: v.method, moe: v.moe, budget: bv, threads: Parallel.threads)
                let setup = RunSetup(
                    numericsVersion: RunCache.numericsVersion, method: v.method, moe: v.moe, budget: bv, threads: Parallel.threads,
                    fingerprint: fp, recorded: "trained")
                if let c = cache, var r = c.load(key, variant: v.label) {
                    if r.setup == nil {  // a file from before setups were recorded
                        r.setup = setup
                        r.setup?.recorded = "matched cache key"
                        try c.recordSetup(r.setup!, key: key)
                    }
                    log(
                        String(
                            format: "[%@] %@ seed %llu: reused %@ (mean BLEU %.2f, chrF %.2f)", name.rawValue, v.label, seed,
                            c.directory.appendingPathComponent(key + ".json").path, r.meanBLEU, r.meanChrF))
                    out.append(r)
                    continue
                }
                if cachedOnly {
                    log("[\(name.rawValue)] \(v.label) seed \(seed): not in the run cache, skipped (--cached-only)")
                    missing.append("\(v.label) (seed \(seed))")
                    continue
                }
                log("[\(name.rawValue)] \(v.label), seed \(seed)")
                runner.moe = v.moe
                runner.budget = bv
                defer { runner.budget = b }
                let t0 = monotonicSeconds()
                let m = try runner.run(v.method)
                let secs = monotonicSeconds() - t0
                var r = RunResult(variant: v.label, seed: seed, directions: [], trainSeconds: secs)
                r.trainedParameters = runner.trained.values.reduce(0, +)
                r.setup = setup
                r.directions = try Evaluation.run(
                    Translator(model: m, tokenizer: tokenizer), bitexts: test, maxSegments: testSegments, keepHypotheses: true)
                // Perplexity (forgetting) and expert use (utilisation, balance) are cheap next to training, so every run
                // records them and any experiment can reuse the run.
                for (lang, f) in monoDev.sorted(by: { $0.key < $1.key }) {
                    r.perplexity[lang] = try m.perplexity(file: f, tokenizer: tokenizer, seq: budget.shared.seq).perplexity
                }
                if m.config.mixMoE != nil { r.expertStats = try expertUse(m) }
                log(String(format: "[%@] %@ seed %llu: mean BLEU %.2f, chrF %.2f (train %.0f s)", name.rawValue, v.label, seed, r.meanBLEU, r.meanChrF, secs))
                try cache?.store(r, key: key)
                out.append(r)
            }
        }
        return out
    }

    /// Expert-selection statistics of a MoE model over (at most 64) test segments per direction,
    /// teacher-forced (prompt + reference), labelled by direction.
    func expertUse(_ m: DecoderModel) throws -> ExpertStatistics {
        m.resetExpertStatistics()
        m.moe.collectStats = true
        defer { m.moe.collectStats = false }
        for bt in test {
            for d in bt.directions {
                let segs = Array(bt.segments(d).prefix(64))
                let exs = segs.map {
                    MTExample(
                        prompt: Prompt.ids($0.src, d, tokenizer: tokenizer),
                        target: tokenizer.encode(" " + $0.tgt) + [Int32(m.config.eosTokenIds[0])], direction: d)
                }
                m.moe.statsLabel = d.description
                let batch = MTDataset.collate(exs.filter { $0.length <= 256 }, pad: Int32(m.config.eosTokenIds[0]))
                try m.setBatch(ids: batch.ids, targets: batch.targets, mask: batch.mask, batch: batch.batch, seq: batch.seq)
                m.forward(batch: batch.batch, seq: batch.seq)
            }
        }
        return m.expertStatistics()
    }
}

/// Mean and sample standard deviation.
public func meanStd(_ xs: [Double]) -> (mean: Double, std: Double) {
    let m = xs.reduce(0, +) / Double(max(xs.count, 1))
    guard xs.count > 1 else { return (m, 0) }
    return (m, (xs.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(xs.count - 1)).squareRoot())
}
