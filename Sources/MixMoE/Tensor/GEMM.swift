import CBLAS

/// Row-major single-precision GEMM: `C = alpha * op(A) * op(B) + beta * C`, where `op(A)` is
/// `[M, K]`, `op(B)` is `[K, N]` and `C` is `[M, N]`. Leading dimensions allow strided views
/// (one attention head inside a `[tokens, heads * head_dim]` buffer).
///
/// All model time should be here (DESIGN section 7): callers pass whole token batches.
@inline(__always)
public func sgemm(
    transA: Bool, transB: Bool, M: Int, N: Int, K: Int,
    alpha: Float = 1, A: UnsafePointer<Float>, lda: Int,
    B: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, C: UnsafeMutablePointer<Float>, ldc: Int
) {
    if M == 0 || N == 0 { return }
    Profile.measure("gemm") {
        cblas_sgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            Int32(M), Int32(N), Int32(K), alpha, A, Int32(lda), B, Int32(ldb), beta, C, Int32(ldc))
    }
}

/// Naive reference for `sgemm` (same contract), used by tests to check the optimised path.
public func sgemmNaive(
    transA: Bool, transB: Bool, M: Int, N: Int, K: Int,
    alpha: Float = 1, A: UnsafePointer<Float>, lda: Int,
    B: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, C: UnsafeMutablePointer<Float>, ldc: Int
) {
    for i in 0..<M {
        for j in 0..<N {
            var acc: Double = 0
            for p in 0..<K {
                let a = transA ? A[p * lda + i] : A[i * lda + p]
                let b = transB ? B[j * ldb + p] : B[p * ldb + j]
                acc += Double(a) * Double(b)
            }
            let old = beta == 0 ? 0 : beta * C[i * ldc + j]
            C[i * ldc + j] = alpha * Float(acc) + old
        }
    }
}

/// OpenBLAS's build description (core type, threading), for benchmark reports.
public var blasConfig: String { String(cString: openblas_get_config()) }
