import Foundation

/// A stretch of parameters the optimiser updates: `count` values at `param` in the store's
/// layout, whose moments live at `moment`.
public struct OptimizerSegment: Sendable, Equatable {
    public var param: Int, moment: Int, count: Int
}

/// AdamW (Loshchilov & Hutter) exactly as `torch.optim.AdamW` computes it, over segments of one
/// `ParameterStore`. The moments hold trainable values only, packed in view order (stage 2 trains
/// a fraction of the model, so frozen views cost no optimiser memory); they are allocated at the
/// first update or restore, with the trainable flags of that moment, which must not change
/// afterwards. Under ZeRO-1 (``OptimizerShard``) the segments are this rank's part only.
public final class AdamW: @unchecked Sendable {
    public var beta1: Float, beta2: Float, eps: Float, weightDecay: Float
    public private(set) var step = 0
    let store: ParameterStore
    private var fixed: (segments: [OptimizerSegment], m: FloatBuffer, v: FloatBuffer)?
    /// The trainable runs the layout was made for (checked at each update).
    private var laidOutFor: [Range<Int>] = []

    public init(store: ParameterStore, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 0) {
        self.store = store
        self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; self.weightDecay = weightDecay
    }

    /// An optimiser for `segments` only, with `momentCount` moments (a ZeRO-1 part).
    init(store: ParameterStore, segments: [OptimizerSegment], momentCount: Int, weightDecay: Float) {
        self.store = store
        beta1 = 0.9; beta2 = 0.999; eps = 1e-8; self.weightDecay = weightDecay
        fixed = (segments, FloatBuffer(count: momentCount), FloatBuffer(count: momentCount))
        laidOutFor = TrainableRuns(store).runs
    }

    /// Every trainable value, packed in view order (made once, at the first use).
    private var layout: (segments: [OptimizerSegment], m: FloatBuffer, v: FloatBuffer) {
        if let fixed { return fixed }
        let runs = TrainableRuns(store)
        fixed = (runs.segments(in: 0..<runs.count), FloatBuffer(count: runs.count), FloatBuffer(count: runs.count))
        laidOutFor = runs.runs
        return fixed!
    }

    /// First moments: the trainable values packed in view order (or this rank's part).
    public var m: FloatBuffer { layout.m }
    /// Second moments, laid out as `m`.
    public var v: FloatBuffer { layout.v }
    /// What an update touches.
    public var segments: [OptimizerSegment] { layout.segments }

    /// One update with learning rate `lr`; frozen views are skipped entirely (bit-for-bit unchanged).
    public func update(lr: Float) {
        step += 1
        let b1 = beta1, b2 = beta2, eps = eps, decay = 1 - lr * weightDecay
        let bc1 = 1 - Float(pow(Double(b1), Double(step)))
        let bc2sqrt = Float((1 - pow(Double(b2), Double(step))).squareRoot())
        let stepSize = lr / bc1
        let (segments, mb, vb) = layout
        precondition(TrainableRuns(store).runs == laidOutFor, "the trainable views changed after the optimiser started")
        for seg in segments {
            let p = store.params.ptr + seg.param, g = store.grads.ptr + seg.param
            let m = mb.ptr + seg.moment, v = vb.ptr + seg.moment
            Parallel.forChunks(seg.count, grain: 16384) { r in
                for i in r {
                    p[i] *= decay  // decoupled weight decay
                    m[i] = b1 * m[i] + (1 - b1) * g[i]
                    v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i]
                    let denom = v[i].squareRoot() / bc2sqrt + eps
                    p[i] -= stepSize * m[i] / denom
                }
            }
        }
    }

    /// Restores optimiser state (resuming from a checkpoint).
    public func restore(step s: Int) { step = s }
}

/// Gradient utilities over the trainable views (or, under ZeRO-1, over a rank's shard: the sum
/// of squares is then all-reduced, so clipping sees the global norm).
public enum Gradients {
    static func trainableRanges(_ store: ParameterStore) -> [Range<Int>] {
        store.entries.filter(\.trainable).map { $0.offset..<($0.offset + $0.count) }
    }

    /// Sum of squares of `ranges` of the gradients (in Double, in order).
    static func sumOfSquares(_ store: ParameterStore, _ ranges: [Range<Int>]) -> Double {
        var total = 0.0
        let g = store.grads.ptr
        for r in ranges {
            var s = 0.0
            for i in r { s += Double(g[i]) * Double(g[i]) }
            total += s
        }
        return total
    }

    /// `torch.nn.utils.clip_grad_norm_`: scale by `max / (norm + 1e-6)` when that is below 1.
    /// Returns the norm before clipping.
    @discardableResult
    public static func clip(_ store: ParameterStore, maxNorm: Double) -> Double { clip(store, trainableRanges(store), maxNorm: maxNorm, norm: nil) }

    /// Clips `ranges` with the given norm (or theirs).
    static func clip(_ store: ParameterStore, _ ranges: [Range<Int>], maxNorm: Double, norm: Double?) -> Double {
        let n = norm ?? sumOfSquares(store, ranges).squareRoot()
        let coef = Float(min(1, maxNorm / (n + 1e-6)))
        if coef < 1 {
            let g = store.grads.ptr
            for r in ranges { for i in r { g[i] *= coef } }
        }
        return n
    }

    /// The view holding the first non-finite gradient within `ranges`.
    static func firstNonFinite(_ store: ParameterStore, _ ranges: [Range<Int>]) -> String? {
        let g = store.grads.ptr
        for r in ranges {
            for i in r where !g[i].isFinite { return store.entries.first { $0.offset <= i && i < $0.offset + $0.count }?.name ?? "?" }
        }
        return nil
    }
}
