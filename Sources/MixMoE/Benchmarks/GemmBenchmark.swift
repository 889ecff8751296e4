import Foundation

/// `mixmoe bench gemm`: `cblas_sgemm` at a model's shapes, the machine's practical GFLOP/s limit
/// that training and prefill are measured against.
public enum GemmBenchmark {
    /// One product `C[M, N] = op(A)[M, K] op(B)[K, N]`.
    public struct Shape: Sendable, Equatable {
        public var name: String
        public var transA, transB: Bool
        public var M, N, K: Int
        public var flops: Double { 2.0 * Double(M) * Double(N) * Double(K) }
    }

    /// The forward projections of `c` on `tokens` tokens; with `all` also the fused projections
    /// (q|k|v, gate|up as one weight) and the backward's input-gradient (`dx = dy W`) and
    /// weight-gradient (`dW = dy^T x`) products.
    public static func shapes(_ c: ModelConfig, tokens t: Int, all: Bool) -> [Shape] {
        let d = c.hiddenSize, f = c.intermediateSize
        let qd = c.numAttentionHeads * c.headDim, kd = c.numKeyValueHeads * c.headDim
        let s = { (n: String, ta: Bool, tb: Bool, m: Int, nn: Int, k: Int) in Shape(name: n, transA: ta, transB: tb, M: m, N: nn, K: k) }
        var out = [
            s("qkvo", false, true, t, d, d), s("ffn_up", false, true, t, f, d), s("ffn_down", false, true, t, d, f),
            s("lm_head", false, true, t, c.vocabSize, d),
        ]
        guard all else { return out }
        out += [
            s("kv", false, true, t, kd, d), s("qkv_fused", false, true, t, qd + 2 * kd, d), s("gate_up_fused", false, true, t, 2 * f, d),
            s("dx_q", false, false, t, d, qd), s("dx_kv", false, false, t, d, kd), s("dx_qkv_fused", false, false, t, d, qd + 2 * kd),
            s("dx_up", false, false, t, d, f), s("dx_gate_up_fused", false, false, t, d, 2 * f), s("dx_down", false, false, t, f, d),
            s("dw_q", true, false, qd, d, t), s("dw_kv", true, false, kd, d, t), s("dw_qkv_fused", true, false, qd + 2 * kd, d, t),
            s("dw_up", true, false, f, d, t), s("dw_gate_up_fused", true, false, 2 * f, d, t), s("dw_down", true, false, d, f, t),
        ]
        return out
    }

    /// A second of products first: the first product of a process runs slow (threads and pages
    /// warming up; measured at 55-65 GFLOP/s against 110 for the same shape later).
    public static func warmUp(_ shape: Shape) {
        let (a, b, out) = operands(shape)
        let t0 = monotonicSeconds()
        while monotonicSeconds() - t0 < 1 { multiply(shape, a, b, out) }
    }

    /// Operands of `shape` with fixed small values.
    public static func operands(_ s: Shape) -> (FloatBuffer, FloatBuffer, FloatBuffer) {
        let a = FloatBuffer(count: s.M * s.K), b = FloatBuffer(count: s.N * s.K), out = FloatBuffer(count: s.M * s.N)
        for i in 0..<a.count { a[i] = Float(i % 7) * 0.1 }
        for i in 0..<b.count { b[i] = Float(i % 5) * 0.1 }
        return (a, b, out)
    }

    /// One product of `shape` on its operands.
    public static func multiply(_ s: Shape, _ a: FloatBuffer, _ b: FloatBuffer, _ out: FloatBuffer) {
        sgemm(
            transA: s.transA, transB: s.transB, M: s.M, N: s.N, K: s.K, A: a.ptr, lda: s.transA ? s.M : s.K, B: b.ptr,
            ldb: s.transB ? s.K : s.N, C: out.ptr, ldc: s.N)
    }
}
