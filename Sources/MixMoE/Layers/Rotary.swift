import Foundation

/// Rotary position embedding in Hugging Face's "rotate_half" layout: for `i < h = head_dim/2`,
/// `y[i] = x[i] cos - x[i+h] sin`, `y[i+h] = x[i+h] cos + x[i] sin`, angle `pos * inv_freq[i]`.
/// Llama 3's `rope_scaling` rescales `inv_freq` (transformers' `_compute_llama3_parameters`).
public final class Rotary: @unchecked Sendable {
    public let headDim: Int
    public let half: Int
    public let invFreq: [Float]
    private var cos = FloatBuffer(count: 0)  // [maxPos, half]
    private var sin = FloatBuffer(count: 0)  // [maxPos, half]
    public private(set) var maxPositions = 0

    public init(config: ModelConfig) {
        headDim = config.headDim
        half = headDim / 2
        invFreq = Rotary.inverseFrequencies(config)
    }

    /// `inv_freq[i] = theta^(-2i/d)`, then Llama 3's smooth rescaling when configured.
    public static func inverseFrequencies(_ c: ModelConfig) -> [Float] {
        let d = c.headDim
        var f = (0..<(d / 2)).map { 1.0 / pow(c.ropeTheta, Double(2 * $0) / Double(d)) }
        if let s = c.ropeScaling, s.ropeType == "llama3" {
            let factor = s.factor!, lo = s.lowFreqFactor!, hi = s.highFreqFactor!
            let old = Double(s.originalMaxPositionEmbeddings!)
            let lowWavelen = old / lo, highWavelen = old / hi
            f = f.map { inv in
                let wavelen = 2 * Double.pi / inv
                if wavelen < highWavelen { return inv }  // high frequency: unchanged
                if wavelen > lowWavelen { return inv / factor }  // low frequency: scaled
                let smooth = (old / wavelen - lo) / (hi - lo)  // medium: interpolate
                return (1 - smooth) * inv / factor + smooth * inv
            }
        }
        return f.map { Float($0) }
    }

    /// Makes sure cos/sin tables cover positions `0..<n`.
    public func reserve(positions n: Int) {
        guard n > maxPositions else { return }
        let c = FloatBuffer(count: n * half), s = FloatBuffer(count: n * half)
        for p in 0..<n {
            for i in 0..<half {
                let angle = Float(p) * invFreq[i]  // fp32 product, as transformers computes it
                c[p * half + i] = Foundation.cos(angle)
                s[p * half + i] = Foundation.sin(angle)
            }
        }
        cos = c; sin = s; maxPositions = n
    }

    /// Rotates `heads` heads of every token in place. `x` is `[n, heads * headDim]`.
    public func forward(_ x: UnsafeMutablePointer<Float>, positions: UnsafePointer<Int32>, n: Int, heads: Int) {
        rotate(x, positions: positions, n: n, heads: heads, sign: 1)
    }

    /// Differentiates the rotation (an orthogonal map): `dx = R^T dy`, i.e. the same rotation with
    /// the angle negated. In place on `dx` `[n, heads * headDim]`.
    public func backward(_ dx: UnsafeMutablePointer<Float>, positions: UnsafePointer<Int32>, n: Int, heads: Int) {
        rotate(dx, positions: positions, n: n, heads: heads, sign: -1)
    }

    private func rotate(_ x: UnsafeMutablePointer<Float>, positions: UnsafePointer<Int32>, n: Int, heads: Int, sign: Float) {
        let half = half, hd = headDim, cos = cos.ptr, sin = sin.ptr, maxP = maxPositions
        Parallel.forChunks(n, grain: 16) { range in
            for t in range {
                let p = Int(positions[t])
                precondition(p >= 0 && p < maxP, "position \(p) outside rotary table (\(maxP))")
                let c = cos + p * half, s = sin + p * half
                for h in 0..<heads {
                    let v = x + t * heads * hd + h * hd
                    for i in 0..<half {
                        let a = v[i], b = v[i + half], si = sign * s[i]
                        v[i] = a * c[i] - b * si  // y[i]   = x[i] cos - x[i+h] sin
                        v[i + half] = b * c[i] + a * si  // y[i+h] = x[i+h] cos + x[i] sin
                    }
                }
            }
        }
    }
}
