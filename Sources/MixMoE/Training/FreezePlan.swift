/// Which parameters a training method updates (paper Table I and Fig. 1; docs/DESIGN.md, *Training*).
/// Everything else is frozen: no weight gradient, bit-for-bit unchanged by the stage.
public enum FreezePlan: String, Sendable, CaseIterable {
    /// every parameter (dense SFT / PT+SFT baselines)
    case full
    /// Mix-MoE stage 1: LM experts and LM router
    case stage1
    /// Mix-MoE stage 2: MT experts and MT router (LM side frozen)
    case stage2
    /// LoRA baseline: only the adapters
    case lora
    /// LLaMA-Pro baseline: only the inserted blocks
    case llamaPro = "llama-pro"
    /// generic-MoE baselines (one group): every expert and the router
    case moe
    /// MoE-LPR's post-pretraining: the new experts (1..n-1; expert 0 is the original FFN, frozen)
    /// and the router weights (its router has no bias: ours stays at 0)
    case moeLPRExperts = "moe-lpr-experts"
    /// MoE-LPR's second stage: the router weights only
    case routers
    /// LLaMA-MoE v2: every parameter but the MLP gates' biases (its gates have none: ours stay 0)
    case llamaMoEv2 = "llama-moe-v2"

    public func isTrainable(_ name: String, _ c: ModelConfig) -> Bool {
        if name == "model.router_transform" { return false }  // a fixed transform, never trained
        switch self {
        case .full: return true
        case .stage1, .moe: return name.contains(".mlp.lm_experts.") || name.contains(".mlp.lm_router.")
        case .stage2: return name.contains(".mlp.mt_experts.") || name.contains(".mlp.mt_router.")
        case .lora: return name.hasSuffix(".lora_A.weight") || name.hasSuffix(".lora_B.weight")
        case .moeLPRExperts:
            return (name.contains(".mlp.lm_experts.") && !name.contains(".mlp.lm_experts.0.")) || name.hasSuffix(".mlp.lm_router.weight")
        case .routers: return name.hasSuffix("_router.weight")
        case .llamaMoEv2: return !name.hasSuffix("_router.bias")
        case .llamaPro:
            return (c.expandedLayers ?? []).contains { name.hasPrefix("model.layers.\($0).") }
        }
    }

    public func apply(to model: DecoderModel) {
        let c = model.config
        model.store.setTrainable { isTrainable($0, c) }
    }
}
