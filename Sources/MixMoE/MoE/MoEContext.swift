/// State shared by all MoE layers of a model during one forward/backward: which tokens are real
/// (padding is excluded from the load-balance statistics), the load-balance gradient weight, and
/// whether to collect expert statistics (and under which label, e.g. a language direction).
public final class MoEContext: @unchecked Sendable {
    /// 1 for a real token, 0 for padding; nil means every token is real.
    public var realMask: UnsafePointer<Float>?
    /// Multiplier of each MoE layer's load-balance loss in the total loss (lambda / #MoE layers,
    /// times this micro-batch's share of the accumulated batch).
    public var lbWeight: Float = 0
    /// MoE-LPR: 1 for a token of the original language(s), which the language-prior routing loss
    /// pushes to expert 0; nil: no such loss.
    public var lprMask: UnsafePointer<Float>?
    /// Multiplier of each MoE layer's LPR loss (its mean over this micro-batch's masked tokens) in
    /// the total loss (lpr_coef / #MoE layers, times this micro-batch's share of the masked tokens).
    public var lprWeight: Float = 0
    /// Use the explicit `[h ; T h]` router path instead of the folded one (tests, benchmarks).
    public var explicitRouter = false
    public var collectStats = false
    public var statsLabel = "all"
    public init() {}
}

/// Expert-use statistics of one group in one MoE layer, accumulated over tokens.
public struct ExpertStats: Codable, Sendable {
    public var tokens = 0
    public var selected: [Int]  // selections per expert (all k slots)
    public var probSum: [Double]  // sum of router probabilities per expert
    public var entropySum = 0.0  // sum of per-token router entropies (nats)

    public init(experts n: Int) { selected = Array(repeating: 0, count: n); probSum = Array(repeating: 0, count: n) }

    public var fraction: [Double] {
        let t = selected.reduce(0, +)
        return selected.map { t > 0 ? Double($0) / Double(t) : 0 }
    }
    public var meanProb: [Double] { probSum.map { tokens > 0 ? $0 / Double(tokens) : 0 } }
    public var meanEntropy: Double { tokens > 0 ? entropySum / Double(tokens) : 0 }

    public mutating func merge(_ o: ExpertStats) {
        tokens += o.tokens
        for i in selected.indices { selected[i] += o.selected[i]; probSum[i] += o.probSum[i] }
        entropySum += o.entropySum
    }
}
