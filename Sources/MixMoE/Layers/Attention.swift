import Foundation

/// Grouped-query causal self-attention with rotary embeddings (Llama / Qwen2).
///
/// Per (sequence, head): `S = Q K^T / sqrt(hd)`, causal softmax in fp32, `Y = P V`, each a GEMM on
/// strided views of the `[tokens, heads * hd]` buffers; then `out = Y Wo^T`.
public final class Attention: @unchecked Sendable {
    public let q: Linear, k: Linear, v: Linear, o: Linear
    public let heads: Int, kvHeads: Int, headDim: Int, dim: Int
    let rotary: Rotary

    // activations for batch b x seq T, N = b*T tokens
    public private(set) var qBuf = FloatBuffer(count: 0)  // [N, heads*hd] after rotary
    public private(set) var kBuf = FloatBuffer(count: 0)  // [N, kvHeads*hd] after rotary
    public private(set) var vBuf = FloatBuffer(count: 0)  // [N, kvHeads*hd]
    public private(set) var att = FloatBuffer(count: 0)   // [b, heads, T, T] softmax probabilities
    public private(set) var y = FloatBuffer(count: 0)     // [N, heads*hd] before o_proj
    public private(set) var out = FloatBuffer(count: 0)   // [N, d]
    // backward scratch
    private var dq = FloatBuffer(count: 0), dk = FloatBuffer(count: 0), dv = FloatBuffer(count: 0)
    private var dy = FloatBuffer(count: 0)                // [N, heads*hd]
    private var dAtt = FloatBuffer(count: 0)              // [T, T]

    public init(_ store: ParameterStore, prefix: String, config c: ModelConfig, rotary: Rotary) {
        heads = c.numAttentionHeads; kvHeads = c.numKeyValueHeads; headDim = c.headDim; dim = c.hiddenSize
        q = Linear(store, prefix + ".q_proj", inF: dim, outF: heads * headDim, bias: c.qkvBias)
        k = Linear(store, prefix + ".k_proj", inF: dim, outF: kvHeads * headDim, bias: c.qkvBias)
        v = Linear(store, prefix + ".v_proj", inF: dim, outF: kvHeads * headDim, bias: c.qkvBias)
        o = Linear(store, prefix + ".o_proj", inF: heads * headDim, outF: dim, bias: c.oBias)
        self.rotary = rotary
    }

    public var anyTrainable: Bool { q.anyTrainable || k.anyTrainable || v.anyTrainable || o.anyTrainable }

    public func reserve(batch b: Int, seq T: Int) {
        let n = b * T, qd = heads * headDim, kd = kvHeads * headDim
        guard qBuf.count < n * qd || att.count < b * heads * T * T else { return }
        qBuf = FloatBuffer(count: n * qd); kBuf = FloatBuffer(count: n * kd); vBuf = FloatBuffer(count: n * kd)
        att = FloatBuffer(count: b * heads * T * T); y = FloatBuffer(count: n * qd); out = FloatBuffer(count: n * dim)
        dq = FloatBuffer(count: n * qd); dk = FloatBuffer(count: n * kd); dv = FloatBuffer(count: n * kd)
        dy = FloatBuffer(count: n * qd); dAtt = FloatBuffer(count: T * T)
    }

    public func forward(_ inp: UnsafePointer<Float>, positions: UnsafePointer<Int32>, batch b: Int, seq T: Int) {
        let n = b * T, hd = headDim, qd = heads * hd, kd = kvHeads * hd, group = heads / kvHeads
        q.forward(inp, qBuf.ptr, n: n)
        k.forward(inp, kBuf.ptr, n: n)
        v.forward(inp, vBuf.ptr, n: n)
        rotary.forward(qBuf.ptr, positions: positions, n: n, heads: heads)
        rotary.forward(kBuf.ptr, positions: positions, n: n, heads: kvHeads)
        let scale = 1 / Float(hd).squareRoot()
        Profile.measure("attention core") {
        for s in 0..<b {
            for h in 0..<heads {
                let qh = qBuf.ptr + s * T * qd + h * hd
                let kh = kBuf.ptr + s * T * kd + (h / group) * hd
                let vh = vBuf.ptr + s * T * kd + (h / group) * hd
                let P = att.ptr + (s * heads + h) * T * T
                // S = Q K^T * scale
                sgemm(transA: false, transB: true, M: T, N: T, K: hd, alpha: scale,
                      A: qh, lda: qd, B: kh, ldb: kd, C: P, ldc: T)
                causalSoftmaxRows(P, T: T)
                // Y = P V
                sgemm(transA: false, transB: false, M: T, N: hd, K: T, A: P, lda: T,
                      B: vh, ldb: kd, C: y.ptr + s * T * qd + h * hd, ldc: qd)
            }
        }
        }
        o.forward(y.ptr, out.ptr, n: n)
    }

    /// Backward of the whole block; `dinp` (if given) is accumulated into.
    public func backward(_ dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, dinp: UnsafeMutablePointer<Float>?,
                         positions: UnsafePointer<Int32>, batch b: Int, seq T: Int) {
        let n = b * T, hd = headDim, qd = heads * hd, kd = kvHeads * hd, group = heads / kvHeads
        let needQKV = dinp != nil || q.anyTrainable || k.anyTrainable || v.anyTrainable
        // out = Y Wo^T
        o.backward(dout, inp: y.ptr, dinp: needQKV ? dy.ptr : nil, accumulate: false, n: n)
        guard needQKV else { return }
        dk.zero(); dv.zero()
        let scale = 1 / Float(hd).squareRoot()
        Profile.measure("attention core") {
        for s in 0..<b {
            for h in 0..<heads {
                let qh = qBuf.ptr + s * T * qd + h * hd, dqh = dq.ptr + s * T * qd + h * hd
                let kOff = s * T * kd + (h / group) * hd
                let P = att.ptr + (s * heads + h) * T * T, dP = dAtt.ptr
                let dyh = dy.ptr + s * T * qd + h * hd
                // Y = P V  ->  dP = dY V^T, dV += P^T dY
                sgemm(transA: false, transB: true, M: T, N: T, K: hd, A: dyh, lda: qd,
                      B: vBuf.ptr + kOff, ldb: kd, C: dP, ldc: T)
                sgemm(transA: true, transB: false, M: T, N: hd, K: T, A: P, lda: T,
                      B: dyh, ldb: qd, beta: 1, C: dv.ptr + kOff, ldc: kd)
                // P = softmax(S)  ->  dS = P * (dP - rowsum(P * dP))
                softmaxBackwardRows(P, dP, T: T)
                // S = Q K^T * scale  ->  dQ = dS K * scale, dK += dS^T Q * scale
                sgemm(transA: false, transB: false, M: T, N: hd, K: T, alpha: scale, A: dP, lda: T,
                      B: kBuf.ptr + kOff, ldb: kd, C: dqh, ldc: qd)
                sgemm(transA: true, transB: false, M: T, N: hd, K: T, alpha: scale, A: dP, lda: T,
                      B: qh, ldb: qd, beta: 1, C: dk.ptr + kOff, ldc: kd)
            }
        }
        }
        // q = rope(x Wq^T): undo the rotation, then the projections
        rotary.backward(dq.ptr, positions: positions, n: n, heads: heads)
        rotary.backward(dk.ptr, positions: positions, n: n, heads: kvHeads)
        q.backward(dq.ptr, inp: inp, dinp: dinp, accumulate: true, n: n)
        k.backward(dk.ptr, inp: inp, dinp: dinp, accumulate: true, n: n)
        v.backward(dv.ptr, inp: inp, dinp: dinp, accumulate: true, n: n)
    }
}

/// Row-wise softmax of `[T, T]` scores with a causal mask (row i sees columns 0...i), in place.
func causalSoftmaxRows(_ P: UnsafeMutablePointer<Float>, T: Int) {
    Parallel.forChunks(T, grain: 32) { rows in
        for i in rows {
            let row = P + i * T
            var m = -Float.infinity
            for j in 0...i where row[j] > m { m = row[j] }
            var sum: Float = 0
            for j in 0...i { let e = expf(row[j] - m); row[j] = e; sum += e }
            let inv = 1 / sum
            for j in 0...i { row[j] *= inv }
            for j in (i + 1)..<T { row[j] = 0 }
        }
    }
}

/// dS = P * (dP - sum_j P dP), in place on `dP` (entries above the diagonal come out 0 since P = 0).
func softmaxBackwardRows(_ P: UnsafePointer<Float>, _ dP: UnsafeMutablePointer<Float>, T: Int) {
    Parallel.forChunks(T, grain: 32) { rows in
        for i in rows {
            let p = P + i * T, d = dP + i * T
            var dot: Float = 0
            for j in 0...i { dot += p[j] * d[j] }
            for j in 0..<T { d[j] = p[j] * (d[j] - dot) }
        }
    }
}
