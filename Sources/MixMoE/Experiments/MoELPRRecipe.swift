import Foundation

/// MoE-LPR's own numbers (Zhou et al. 2024; the reference code's defaults and scripts; the
/// Mix-MoE paper runs it, like its generic MoE, with 8 experts in every 4th layer). How it is
/// adapted to translation is in docs/DESIGN.md, "MoE-LPR".
public struct MoELPRRecipe: Codable, Sendable, Equatable, Hashable {
    /// Experts per MoE layer: expert 0 is the original FFN (frozen), experts 1..n-1 copies of it.
    public var experts = 8
    public var topK = 2
    /// Load-balance weight of the post-pretraining stage (Mixtral's loss over every selected slot).
    public var lbCoef = 0.01
    /// Weight of the language-prior routing loss in the router stage.
    public var lprCoef = 0.1
    /// The languages the base model already knows: their tokens are routed to expert 0.
    public var originalLanguages: [String] = ["en"]
    /// Share of the parallel-stage steps given to the router-only LPR stage (at least one step).
    public var lprFraction = 0.1
    public init() {}

    /// The `mix_moe` block of MoE-LPR's model: the dense FFNs of the MoE layers copied into
    /// `experts` experts (expert 0 the original), a plain linear router (Xavier-normal, as the
    /// reference's `nn.init.xavier_normal_`; no bias), top-k weights renormalised, Mixtral's load
    /// balance. One group: MoE-LPR has no LM/MT split.
    public func config(for base: ModelConfig, every: Int = 4, placement: Placement = .uniform, seed: UInt64 = 0) throws -> MixMoEConfig {
        var o = MoEOptions()
        o.experts = experts; o.every = every; o.placement = placement; o.topK = topK
        o.routerFeatures = .none; o.lbCoef = lbCoef; o.upcycle = .copy
        var c = try o.config(for: base, groups: 1, seed: seed)
        c.loadBalance = .allSelected
        c.routerInitStd = (2 / Double(base.hiddenSize + experts)).squareRoot()
        return c
    }

    /// Steps of the LPR stage within a parallel stage of `stage2` steps.
    public func lprSteps(_ stage2: Int) -> Int { stage2 > 0 ? max(1, Int((Double(stage2) * lprFraction).rounded())) : 0 }
}

/// Marks every real token of a source's batches as original-language text for MoE-LPR's
/// language-prior routing loss.
public final class LPRTaggedSource: BatchSource {
    public let inner: BatchSource
    public init(_ inner: BatchSource) { self.inner = inner }
    func tag(_ b: TokenBatch) -> TokenBatch {
        var b = b
        b.lprMask = b.mask ?? [Float](repeating: 1, count: b.ids.count)
        return b
    }
    public func nextBatch(sequences: Int) -> TokenBatch { tag(inner.nextBatch(sequences: sequences)) }
    public func nextBatch(tokens: Int) -> TokenBatch { tag(inner.nextBatch(tokens: tokens)) }
    public var cursor: Int { inner.cursor }
    public func seek(_ c: Int) { inner.seek(c) }
    public var epochs: Double { inner.epochs }
}
