import Foundation

/// The gate of LLaMA-MoE v2's attention MoE (``AttentionMoEConfig``): per token, softmax over
/// the experts (the KV heads) of `x Wg^T`, the `topK` largest kept, renormalised to sum to one and
/// multiplied by `scale` (the reference's `scale_factor_attn`). ``Attention`` uses `keep` to
/// restrict each expert's attention to its tokens and `weights` to mix the experts' outputs.
public final class AttentionGate: @unchecked Sendable {
    public let gate: Linear  // [E, d], no bias
    public let experts: Int, topK: Int, scale: Float

    var probs = FloatBuffer(count: 0)  // [N, E] softmax(x Wg^T)
    /// `[N, E]`: `scale * p_e / sum_{f selected} p_f` for the selected experts, 0 for the others.
    public private(set) var weights = FloatBuffer(count: 0)
    /// `[N, E]`: 1 where the expert is selected, else 0.
    public private(set) var keep = FloatBuffer(count: 0)
    var dLogits = FloatBuffer(count: 0)  // [N, E]

    init(_ store: ParameterStore, prefix: String, experts: Int, dim: Int, topK: Int, scale: Double) {
        gate = Linear(store, prefix, inF: dim, outF: experts, bias: false)
        self.experts = experts; self.topK = topK; self.scale = Float(scale)
    }

    func reserve(_ n: Int) {
        let need = n * experts
        if probs.count < need {
            probs = FloatBuffer(count: need); weights = FloatBuffer(count: need); keep = FloatBuffer(count: need)
            dLogits = FloatBuffer(count: need)
        }
    }

    /// Routes `n` rows of `inp` (`[n, d]`): probs, keep, weights.
    func route(_ inp: UnsafePointer<Float>, n: Int) {
        reserve(n)
        let E = experts, k = topK, s = scale
        gate.forward(inp, probs.ptr, n: n)  // probs = x Wg^T (logits, softmaxed in place below)
        let p = probs.ptr, w = weights.ptr, kp = keep.ptr
        for i in 0..<n {
            let row = p + i * E
            VectorMath.softmax(row, E)
            // top-k: the k largest, ties to the lower index; k passes over the row, no allocation
            let kr = kp + i * E, wr = w + i * E
            kr.update(repeating: 0, count: E)
            var z: Float = 0
            for _ in 0..<k {
                var best = -1
                for e in 0..<E where kr[e] == 0 && (best < 0 || row[e] > row[best]) { best = e }
                kr[best] = 1
                z += row[best]
            }
            for e in 0..<E { wr[e] = kr[e] != 0 ? s * row[e] / z : 0 }
        }
    }

    /// Differentiates `weights` (from `route` on the same rows): `dWeights` `[n, E]` in, the
    /// gate's weight gradient and (if given) `dinp` accumulated.
    ///   w_e = s p_e / Z (Z = sum over the selected of p)  ->  dp_f = s/Z (dw_f - sum_e dw_e p_e / Z), f selected
    ///   p = softmax(l)                                      ->  dl = p * (dp - sum_j p_j dp_j)
    ///   l = x Wg^T                                          ->  dWg += dl^T x, dx += dl Wg
    func backward(_ dWeights: UnsafePointer<Float>, inp: UnsafePointer<Float>, dinp: UnsafeMutablePointer<Float>?, n: Int) {
        let E = experts, s = scale, p = probs.ptr, kp = keep.ptr, dl = dLogits.ptr
        for i in 0..<n {
            let pr = p + i * E, kr = kp + i * E, dw = dWeights + i * E, out = dl + i * E
            var z: Float = 0, wdot: Float = 0
            for e in 0..<E where kr[e] != 0 { z += pr[e] }
            for e in 0..<E where kr[e] != 0 { wdot += dw[e] * pr[e] }
            var pdot: Float = 0
            for e in 0..<E {
                out[e] = kr[e] != 0 ? s / z * (dw[e] - wdot / z) : 0  // dp
                pdot += pr[e] * out[e]
            }
            for e in 0..<E { out[e] = pr[e] * (out[e] - pdot) }
        }
        guard gate.weight.trainable || dinp != nil else { return }
        gate.backward(dl, inp: inp, dinp: dinp, accumulate: true, n: n)
    }
}

/// Causal softmax of `[T, T]` scores restricted to one expert's tokens, in place: row i, when
/// token i is routed to the expert (`keep[i * stride] != 0`), is a softmax over the columns
/// j <= i whose tokens are routed to it; every other entry is 0. (LLaMA-MoE v2 gathers an
/// expert's tokens into a shorter sequence and runs causal attention on it; masking the full
/// sequence gives the same rows.) Serial: it runs inside per-head parallel tasks.
func maskedCausalSoftmaxRowsSerial(_ P: UnsafeMutablePointer<Float>, T: Int, keep: UnsafePointer<Float>, stride: Int) {
    for i in 0..<T {
        let row = P + i * T
        guard keep[i * stride] != 0 else {
            row.update(repeating: 0, count: T)
            continue
        }
        var m = -Float.infinity
        for j in 0...i where keep[j * stride] != 0 { m = max(m, row[j]) }
        var sum: Float = 0
        for j in 0..<T {
            if j <= i && keep[j * stride] != 0 {
                row[j] = expf(row[j] - m)
                sum += row[j]
            } else {
                row[j] = 0
            }
        }
        for j in 0...i { row[j] /= sum }
    }
}
