import Foundation

/// RMSNorm (Llama): `y = x / sqrt(mean(x^2) + eps) * w`, statistics in fp32.
public final class RMSNorm: @unchecked Sendable {
    public let weight: Param  // [d]
    public let dim: Int
    public let eps: Float
    public private(set) var out = FloatBuffer(count: 0)  // [N, d]
    public private(set) var rstd = FloatBuffer(count: 0)  // [N]
    private var partial = FloatBuffer(count: 0)  // [chunks, d] per-chunk dweight

    public init(_ store: ParameterStore, _ name: String, dim: Int, eps: Double) {
        weight = Param(store, name)
        self.dim = dim
        self.eps = Float(eps)
    }

    public func reserve(tokens: Int) {
        if out.count < tokens * dim {
            out = FloatBuffer(count: tokens * dim)
            rstd = FloatBuffer(count: tokens)
        }
    }

    public func forward(_ inp: UnsafePointer<Float>, n: Int) {
        let d = dim, eps = eps, w = weight.w, out = out.ptr, rstd = rstd.ptr
        Parallel.forChunks(n, grain: 16) { range in
            for t in range {
                let x = inp + t * d, y = out + t * d
                var ss: Float = 0
                for i in 0..<d { ss += x[i] * x[i] }
                let r = 1 / (ss / Float(d) + eps).squareRoot()  // rstd = 1/sqrt(mean(x^2)+eps)
                rstd[t] = r
                for i in 0..<d { y[i] = x[i] * r * w[i] }  // y = x * rstd * w
            }
        }
    }

    /// Differentiates `y = x * r * w` with `r = (mean(x^2)+eps)^(-1/2)`:
    /// `dx = r * (dy*w) - x * r^3 / d * sum(dy*w*x)`, `dw += sum_t dy * x * r`.
    /// `dinp` is accumulated into (the residual stream's gradient).
    public func backward(
        _ dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
        dinp: UnsafeMutablePointer<Float>?, n: Int
    ) {
        let d = dim, w = weight.w, rstd = rstd.ptr
        if let dinp {
            Parallel.forChunks(n, grain: 16) { range in
                for t in range {
                    let x = inp + t * d, dy = dout + t * d, dx = dinp + t * d
                    let r = rstd[t]
                    var dot: Float = 0
                    for i in 0..<d { dot += dy[i] * w[i] * x[i] }
                    let c = dot * r * r * r / Float(d)
                    for i in 0..<d { dx[i] += r * dy[i] * w[i] - x[i] * c }
                }
            }
        }
        if weight.trainable {
            let chunks = Parallel.chunkCount(n, grain: 16)
            if partial.count < chunks * d { partial = FloatBuffer(count: chunks * d) }
            let part = partial.ptr
            part.update(repeating: 0, count: chunks * d)
            Parallel.forChunksIndexed(n, grain: 16) { c, range in
                let acc = part + c * d
                for t in range {
                    let x = inp + t * d, dy = dout + t * d, r = rstd[t]
                    for i in 0..<d { acc[i] += dy[i] * x[i] * r }
                }
            }
            let g = weight.g
            for c in 0..<chunks { for i in 0..<d { g[i] += part[c * d + i] } }
        }
    }
}
