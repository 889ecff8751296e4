import Foundation

/// One group of n experts (LM or MT): a ``Router`` that decides which rows go where and an
/// ``ExpertDispatch`` that runs the experts on them. Parameter names follow docs/DESIGN.md
/// ("Checkpoint layout"): `PREFIX.{lm,mt}_router.{weight,bias}`,
/// `PREFIX.{lm,mt}_experts.E.{gate,up,down}_proj.weight`.
public final class ExpertGroup: @unchecked Sendable {
    public let router: Router
    public let experts: ExpertDispatch
    let context: MoEContext

    public init(
        _ store: ParameterStore, prefix: String, group: String, cfg: MixMoEConfig, d: Int, intermediate: Int,
        transform: UnsafePointer<Float>?, transformOwner: AnyObject?, context: MoEContext
    ) {
        router = Router(
            store, prefix: "\(prefix).\(group)_router", cfg: cfg, d: d, transform: transform,
            transformOwner: transformOwner, context: context)
        experts = ExpertDispatch(
            store, prefix: "\(prefix).\(group)_experts", experts: cfg.expertsPerGroup, d: d,
            width: cfg.expertWidth(intermediate))
        self.context = context
    }

    /// Parameter names and shapes of one group.
    public static func layout(prefix: String, group: String, cfg: MixMoEConfig, d: Int, intermediate: Int) -> [(String, [Int])] {
        let n = cfg.expertsPerGroup, s = cfg.expertWidth(intermediate)
        var l: [(String, [Int])] = []
        for e in 0..<n {
            let p = "\(prefix).\(group)_experts.\(e)."
            l += [(p + "gate_proj.weight", [s, d]), (p + "up_proj.weight", [s, d]), (p + "down_proj.weight", [d, s])]
        }
        l += [("\(prefix).\(group)_router.weight", [n, cfg.routerInputWidth(d)]), ("\(prefix).\(group)_router.bias", [n])]
        return l
    }

    public var anyTrainable: Bool { router.trainable || experts.trainable }
    public var out: FloatBuffer { experts.out }
    public var lbLoss: Double { router.lbLoss }
    public var lprLoss: Double { router.lprLoss }
    public var stats: [String: ExpertStats] {
        get { router.stats }
        set { router.stats = newValue }
    }

    public func reserve(tokens N: Int) {
        router.reserve(tokens: N)
        experts.reserve(tokens: N, rows: N * router.k)
    }

    public func forward(_ x: UnsafePointer<Float>, n N: Int) {
        Profile.measure("router") { router.forward(x, n: N) }
        experts.forward(x, routing: router.routing)
    }

    /// Backward of `outScale * out` (the group-combination factor) plus the load-balance term.
    public func backward(
        _ dout: UnsafePointer<Float>, outScale: Float, x: UnsafePointer<Float>,
        dx: UnsafeMutablePointer<Float>?, n N: Int
    ) {
        let needRouter = router.trainable || dx != nil
        guard experts.trainable || needRouter || dx != nil else { return }
        experts.backward(dout, outScale: outScale, routing: router.routing, dx: dx)
        if needRouter {
            let drow = UnsafePointer(experts.drow.ptr)
            Profile.measure("router") { router.backward(drow: drow, x: x, dx: dx, n: N) }
        }
    }
}
