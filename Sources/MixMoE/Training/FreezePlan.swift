/// Which parameters a training method updates (paper Table I and Fig. 1; DESIGN section 4).
/// Everything else is frozen: no weight gradient, bit-for-bit unchanged by the stage.
public enum FreezePlan: String, Sendable, CaseIterable {
    /// every parameter (dense SFT / PT+SFT baselines)
    case full
    /// Mix-MoE stage 1: LM experts and LM router
    case stage1
    /// Mix-MoE stage 2: MT experts and MT router (LM side frozen)
    case stage2

    public func isTrainable(_ name: String) -> Bool {
        if name == "model.router_transform" { return false }  // a fixed transform, never trained
        switch self {
        case .full: return true
        case .stage1: return name.contains(".mlp.lm_experts.") || name.contains(".mlp.lm_router.")
        case .stage2: return name.contains(".mlp.mt_experts.") || name.contains(".mlp.mt_router.")
        }
    }

    public func apply(to store: ParameterStore) { store.setTrainable(isTrainable) }
}
