import Foundation

/// AdamW (Loshchilov & Hutter) exactly as `torch.optim.AdamW` computes it, over the trainable views
/// of one `ParameterStore`; the moments share the parameters' layout, so this is one loop.
public final class AdamW: @unchecked Sendable {
    public var beta1: Float, beta2: Float, eps: Float, weightDecay: Float
    public private(set) var step = 0
    public let m: FloatBuffer  // first moments, same layout as the parameters
    public let v: FloatBuffer  // second moments
    let store: ParameterStore

    public init(store: ParameterStore, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 0) {
        self.store = store
        self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; self.weightDecay = weightDecay
        m = FloatBuffer(count: store.count)
        v = FloatBuffer(count: store.count)
    }

    /// One update with learning rate `lr`; frozen views are skipped entirely (bit-for-bit unchanged).
    public func update(lr: Float) {
        step += 1
        let b1 = beta1, b2 = beta2, eps = eps, decay = 1 - lr * weightDecay
        let bc1 = 1 - Float(pow(Double(b1), Double(step)))
        let bc2sqrt = Float((1 - pow(Double(b2), Double(step))).squareRoot())
        let stepSize = lr / bc1
        let p = store.params.ptr, g = store.grads.ptr, m = m.ptr, v = v.ptr
        for e in store.entries where e.trainable {
            let off = e.offset
            Parallel.forChunks(e.count, grain: 16384) { r in
                for j in r {
                    let i = off + j
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

/// Gradient utilities over the trainable views.
public enum Gradients {
    /// Global L2 norm of the trainable gradients (accumulated in Double, in view order).
    public static func norm(_ store: ParameterStore) -> Double {
        var total = 0.0
        let g = store.grads.ptr
        for e in store.entries where e.trainable {
            var s = 0.0
            for i in e.offset..<(e.offset + e.count) { s += Double(g[i]) * Double(g[i]) }
            total += s
        }
        return total.squareRoot()
    }

    /// `torch.nn.utils.clip_grad_norm_`: scale by `max / (norm + 1e-6)` when that is below 1.
    /// Returns the norm before clipping.
    @discardableResult
    public static func clip(_ store: ParameterStore, maxNorm: Double) -> Double {
        let n = norm(store)
        let coef = Float(min(1, maxNorm / (n + 1e-6)))
        if coef < 1 {
            let g = store.grads.ptr
            for e in store.entries where e.trainable {
                for i in e.offset..<(e.offset + e.count) { g[i] *= coef }
            }
        }
        return n
    }

    /// First trainable view holding a NaN or Inf gradient, if any.
    public static func firstNonFinite(_ store: ParameterStore) -> String? {
        let g = store.grads.ptr
        for e in store.entries where e.trainable {
            for i in e.offset..<(e.offset + e.count) where !g[i].isFinite { return e.name }
        }
        return nil
    }
}
