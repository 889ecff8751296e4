import Foundation

/// One configuration of an experiment: a method plus MoE options.
public struct Variant: Sendable {
    public var label: String
    public var method: Method
    public var moe: MoEOptions
    public init(_ label: String, _ method: Method, _ moe: MoEOptions = MoEOptions()) {
        self.label = label; self.method = method; self.moe = moe
    }
}

/// The paper's experiments (docs/DESIGN.md, "Experiments") as lists of variants.
public enum ExperimentName: String, Codable, Sendable, CaseIterable {
    case main, ablation
    case routerFeatures = "router-features"
    case placement, experts, balance, utilisation, forgetting
    /// seed-to-seed spread of the two methods the main comparison hinges on
    case spread
    /// dev perplexity through the stages for slice and copy upcycling (``UpcyclingStudy``)
    case upcycling
    /// top-k per group: k = 1, 2, 4
    case topk
    /// stage 2 on one language pair, BLEU on every direction (``TransferStudy``)
    case transfer

    public var variants: [Variant] {
        func mm(_ label: String, _ edit: (inout MoEOptions) -> Void) -> Variant {
            var o = MoEOptions(); edit(&o); return Variant(label, .mixMoE, o)
        }
        switch self {
        case .main, .forgetting:
            return [
                Variant("base", .base), Variant("dense SFT", .sft), Variant("dense PT+SFT", .ptSft), Variant("LoRA", .lora),
                Variant("LLaMA-Pro", .llamaPro), Variant("generic MoE", .moe), Variant("MoE PT+SFT", .moePtSft),
                Variant("MoE-LPR", .moeLPR), Variant("LLaMA-MoE v2", .llamaMoEv2), Variant("Mix-MoE", .mixMoE),
            ]
        case .ablation:
            return [
                Variant("dense SFT", .sft), Variant("dense PT+SFT", .ptSft), Variant("MoE PT", .moePt),
                Variant("MoE SFT", .moeSft), Variant("MoE PT+SFT", .moePtSft), Variant("Mix-MoE", .mixMoE),
                Variant("dense FFN at MoE layers (control)", .denseFFN),
            ]
        case .routerFeatures:
            return RouterFeatures.allCases.map { f in mm(f.rawValue) { $0.routerFeatures = f } }
        case .placement:
            return [Placement.uniform, .bottom, .top, .denseBottom].map { p in mm(p.description) { $0.placement = p } }
        case .experts:
            return [2, 4, 8].map { n in mm("\(n) experts") { $0.experts = n } }
        case .balance:
            return [0, 0.001, 0.01, 0.1, 1].map { l in mm("lambda \(l)") { $0.lbCoef = l } }
        case .utilisation:
            return [Variant("Mix-MoE", .mixMoE)]
        case .spread:
            return [Variant("dense SFT", .sft), Variant("Mix-MoE", .mixMoE)]
        case .topk:
            return [1, 2, 4].map { k in mm("top-\(k)") { $0.topK = k } }
        case .upcycling, .transfer:
            return []  // not comparisons of variants: UpcyclingStudy and TransferStudy run them
        }
    }
}

/// Results of one trained variant under one seed (also the run cache's record).
/// Everything a run's cache key was made of, written into the run's file so a reader sees how it
/// was produced without the command: the numerics version, the method and its MoE options, the
/// budget (steps, rates, batch, sequence length, seed), the thread count, and the fingerprint of
/// the base weights and data.
public struct RunSetup: Codable, Sendable, Equatable {
    public var numericsVersion: String
    public var method: Method
    public var moe: MoEOptions
    public var budget: Budget
    public var threads: Int
    public var fingerprint: String
    /// How the setup got into the file: "trained" (written with the result) or "matched cache key"
    /// (added when a later run found the result under the key this setup makes).
    public var recorded: String

    enum CodingKeys: String, CodingKey {
        case numericsVersion = "numerics_version", method, moe, budget, threads, fingerprint, recorded
    }
}

public struct RunResult: Codable, Sendable {
    public var variant: String
    public var seed: UInt64
    public var directions: [DirectionResult]
    public var perplexity: [String: Double] = [:]
    public var expertStats: ExpertStatistics = [:]
    public var trainSeconds: Double
    /// Parameters the method trained (the union over its stages; nil in runs recorded before it was kept).
    public var trainedParameters: Int?
    /// True when the result was read from a `RunCache` rather than trained in this invocation.
    public var cached = false
    /// How the run was produced (nil in a file written before setups were recorded and not reused since).
    public var setup: RunSetup?
    public var meanBLEU: Double { directions.map(\.bleu).reduce(0, +) / Double(max(directions.count, 1)) }
    public var meanChrF: Double { directions.map(\.chrf).reduce(0, +) / Double(max(directions.count, 1)) }

    enum CodingKeys: String, CodingKey {
        case variant, seed, directions, perplexity, expertStats = "expert_stats", trainSeconds = "train_s", cached = "reused_from_cache"
        case trainedParameters = "trained_parameters", setup
        case meanBLEU = "mean_bleu", meanChrF = "mean_chrf"  // written for readers of the JSON; derived on reading
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(variant, forKey: .variant); try c.encode(seed, forKey: .seed); try c.encode(directions, forKey: .directions)
        try c.encode(perplexity, forKey: .perplexity); try c.encode(expertStats, forKey: .expertStats)
        try c.encode(trainSeconds, forKey: .trainSeconds); try c.encode(cached, forKey: .cached)
        try c.encodeIfPresent(trainedParameters, forKey: .trainedParameters)
        try c.encodeIfPresent(setup, forKey: .setup)
        try c.encode(meanBLEU, forKey: .meanBLEU); try c.encode(meanChrF, forKey: .meanChrF)
    }

    public init(variant: String, seed: UInt64, directions: [DirectionResult], trainSeconds: Double) {
        self.variant = variant; self.seed = seed; self.directions = directions; self.trainSeconds = trainSeconds
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        variant = try c.decode(String.self, forKey: .variant)
        seed = try c.decode(UInt64.self, forKey: .seed)
        directions = try c.decode([DirectionResult].self, forKey: .directions)
        perplexity = try c.decodeIfPresent([String: Double].self, forKey: .perplexity) ?? [:]
        expertStats = try c.decodeIfPresent(ExpertStatistics.self, forKey: .expertStats) ?? [:]
        trainSeconds = try c.decode(Double.self, forKey: .trainSeconds)
        cached = try c.decodeIfPresent(Bool.self, forKey: .cached) ?? false
        trainedParameters = try c.decodeIfPresent(Int.self, forKey: .trainedParameters)
        setup = try c.decodeIfPresent(RunSetup.self, forKey: .setup)
    }
}

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
                    if r.setup == nil {  // a file from before setups were recorded: the key it matched says how it was made
                        r.setup = setup
                        r.setup?.recorded = "matched cache key"
                        try c.store(r, key: key, keepVariant: false)
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
