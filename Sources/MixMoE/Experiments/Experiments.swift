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
