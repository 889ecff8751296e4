/// The Mix-MoE feed-forward layer (paper III-A/B; docs/DESIGN.md, *Mix-MoE layer*): an LM group and, from
/// stage 2 on, an MT group, each with its own router; `y = (y_LM + y_MT) / 2` (or the sum) in
/// stage 2, `y = y_LM` in stage 1.
public final class MixMoELayer: FeedForward, @unchecked Sendable {
    public let groups: [ExpertGroup]  // [LM] or [LM, MT]
    public let combineScale: Float
    public let d: Int
    private var out = FloatBuffer(count: 0)  // [N, d]

    public init(
        _ store: ParameterStore, layer i: Int, cfg: MixMoEConfig, d: Int, intermediate: Int,
        transform: UnsafePointer<Float>?, transformOwner: AnyObject?, context: MoEContext
    ) {
        let prefix = "model.layers.\(i).mlp"
        groups = cfg.groupNames.map {
            ExpertGroup(
                store, prefix: prefix, group: $0, cfg: cfg, d: d, intermediate: intermediate,
                transform: transform, transformOwner: transformOwner, context: context)
        }
        combineScale = groups.count == 2 && cfg.combine == .mean ? 0.5 : 1
        self.d = d
    }

    public var output: UnsafeMutablePointer<Float> { out.ptr }
    public var anyTrainable: Bool { groups.contains { $0.anyTrainable } }
    /// Sum of the groups' load-balance losses in the last forward.
    public var lbLoss: Double { groups.reduce(0) { $0 + $1.lbLoss } }
    /// Sum of the groups' language-prior routing losses in the last forward (MoE-LPR).
    public var lprLoss: Double { groups.reduce(0) { $0 + $1.lprLoss } }

    public func reserve(tokens n: Int) {
        for g in groups { g.reserve(tokens: n) }
        if out.count < n * d { out = FloatBuffer(count: n * d) }
    }

    public func forward(_ x: UnsafePointer<Float>, n: Int) {
        for g in groups { g.forward(x, n: n) }
        let o = out.ptr, c = combineScale, d = d
        let a = groups[0].out.ptr
        if groups.count == 1 {
            o.update(from: a, count: n * d)
        } else {
            let b = groups[1].out.ptr
            Parallel.forChunks(n * d, grain: 8192) { r in for i in r { o[i] = c * (a[i] + b[i]) } }  // y = c (y_LM + y_MT)
        }
    }

    public func backward(_ dout: UnsafePointer<Float>, x: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?, n: Int) {
        for g in groups { g.backward(dout, outScale: combineScale, x: x, dx: dx, n: n) }
    }
}
