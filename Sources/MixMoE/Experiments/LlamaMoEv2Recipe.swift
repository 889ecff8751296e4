import Foundation

/// LLaMA-MoE v2 as the Mix-MoE paper runs it ("8 experts, top 2", MoE in both attention and
/// MLP): every layer's MLP sliced into `experts` neuron slices (LLaMA-MoE's construction, ours
/// for Mix-MoE too) with a linear softmax gate without bias, top-k renormalised, Mixtral's load
/// balance; every layer's attention split into experts along its heads (``AttentionMoEConfig``,
/// ``Upcycling/attentionExperts(_:split:topK:scale:layers:seed:)``). Both stages train every
/// parameter, as LLaMA-MoE v2's post-training does. How it is adapted is in docs/DESIGN.md.
public struct LlamaMoEv2Recipe: Codable, Sendable, Equatable, Hashable {
    public var experts = 8
    public var topK = 2
    /// Attention experts: at most this many (the KV heads split so that every expert keeps at
    /// least one query head: the base model's 4 heads and 2 KV heads give 4).
    public var attentionExperts = 8
    public var attentionTopK = 2
    public var lbCoef = 0.01
    public init() {}

    /// The split of each KV head: the largest with kvHeads x split <= attentionExperts dividing the heads.
    public func attentionSplit(_ c: ModelConfig) -> Int {
        var best = 1
        for s in 1...max(1, attentionExperts / c.numKeyValueHeads) where c.numAttentionHeads % (c.numKeyValueHeads * s) == 0 { best = s }
        return best
    }

    /// The dense base upcycled: MLP experts in every layer, then attention experts in every layer.
    /// Scales: at a uniform gate every selected expert has weight 1 (MLP: `experts * p`; attention:
    /// the renormalised weights times top-k), so the layer starts as the dense layer restricted to
    /// the selected slices or heads, and with every expert selected as the dense layer itself.
    public func model(from base: DecoderModel, seed: UInt64) throws -> DecoderModel {
        var o = MoEOptions()
        o.experts = experts; o.every = 1; o.topK = topK; o.routerFeatures = .none; o.lbCoef = lbCoef; o.upcycle = .slice
        o.gateScale = Double(experts)
        var c = try o.config(for: base.config, groups: 1, seed: seed)
        c.loadBalance = .allSelected
        c.routerInitStd = (2 / Double(base.config.hiddenSize + experts)).squareRoot()
        let mlp = try Upcycling.upcycle(base, c)
        let split = attentionSplit(base.config), e = base.config.numKeyValueHeads * split
        let k = min(attentionTopK, e)
        return try Upcycling.attentionExperts(mlp, split: split, topK: k, scale: Double(k), seed: seed)
    }
}
