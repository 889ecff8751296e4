import Foundation

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
