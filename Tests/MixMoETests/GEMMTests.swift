import Testing

@testable import MixMoE

/// The optimised GEMM (OpenBLAS) against the naive triple loop, for every transpose combination,
/// strided leading dimensions and beta = 0 / 1.
struct GEMMTests {
    /// `sgemm` and `sgemmNaive` on the same operands (alpha 0.7, C starting at `c0`) agree to 1e-5.
    func compare(
        _ ta: Bool, _ tb: Bool, _ M: Int, _ N: Int, _ K: Int, _ a: FloatBuffer, _ lda: Int, _ b: FloatBuffer, _ ldb: Int,
        _ beta: Float, _ c0: [Float], _ ldc: Int, _ what: String, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let c1 = FloatBuffer(c0), c2 = FloatBuffer(c0)
        sgemm(transA: ta, transB: tb, M: M, N: N, K: K, alpha: 0.7, A: a.ptr, lda: lda, B: b.ptr, ldb: ldb, beta: beta, C: c1.ptr, ldc: ldc)
        sgemmNaive(transA: ta, transB: tb, M: M, N: N, K: K, alpha: 0.7, A: a.ptr, lda: lda, B: b.ptr, ldb: ldb, beta: beta, C: c2.ptr, ldc: ldc)
        expectClose(c1.array, c2.array, atol: 1e-5, what, sourceLocation: sourceLocation)
    }

    @Test(arguments: [(false, false), (false, true), (true, false), (true, true)], [Float(0), 1])
    func matchesNaive(_ trans: (Bool, Bool), beta: Float) {
        let M = 5, N = 7, K = 9, pad = 3
        let (ta, tb) = trans
        let lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad
        let a = FloatBuffer(randomFloats((ta ? K : M) * lda, seed: 1))
        let b = FloatBuffer(randomFloats((tb ? N : K) * ldb, seed: 2))
        let c0 = randomFloats(M * ldc, seed: 3)
        compare(ta, tb, M, N, K, a, lda, b, ldb, beta, c0, ldc, "sgemm \(trans) beta \(beta)")
    }

    /// The small-M kernel decoding uses (M <= 8, B transposed), at sizes that take its path
    /// through `sgemm`, including a K that is not a multiple of 16 and strided operands.
    @Test(arguments: [1, 2, 3, 5, 8], [Float(0), 1])
    func smallMKernelMatchesNaive(_ M: Int, beta: Float) {
        let N = 300, K = 77, pad = 5
        let lda = K + pad, ldb = K + pad, ldc = N + pad
        let a = FloatBuffer(randomFloats(M * lda, seed: 4)), b = FloatBuffer(randomFloats(N * ldb, seed: 5))
        let c0 = randomFloats(M * ldc, seed: 6)
        compare(false, true, M, N, K, a, lda, b, ldb, beta, c0, ldc, "small-M sgemm M=\(M) beta \(beta)")
    }

    /// Batched decoding gives the batch-1 output: every row of an M-row small-M product equals,
    /// bit for bit, the product of that row alone (the kernel sums each element in the same order
    /// whatever M is). K = 77 covers the 16-lane body and the tail.
    @Test(arguments: [2, 3, 4, 5, 7, 8])
    func smallMRowsEqualOneRowAtATime(_ M: Int) {
        let N = 40, K = 77, lda = K + 3
        let a = FloatBuffer(randomFloats(M * lda, seed: 7)), b = FloatBuffer(randomFloats(N * K, seed: 8))
        let batched = FloatBuffer(count: M * N), single = FloatBuffer(count: N)
        sgemmSmallM(M: M, N: N, K: K, alpha: 0.7, A: a.ptr, lda: lda, B: b.ptr, ldb: K, beta: 0, C: batched.ptr, ldc: N)
        for m in 0..<M {
            sgemmSmallM(M: 1, N: N, K: K, alpha: 0.7, A: a.ptr + m * lda, lda: lda, B: b.ptr, ldb: K, beta: 0, C: single.ptr, ldc: N)
            #expect((0..<N).allSatisfy { batched[m * N + $0].bitPattern == single[$0].bitPattern }, "row \(m) of M = \(M)")
        }
    }
}
