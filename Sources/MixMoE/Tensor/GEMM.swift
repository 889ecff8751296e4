import CBLAS
import Foundation

/// Row-major single-precision GEMM: `C = alpha * op(A) * op(B) + beta * C`, where `op(A)` is
/// `[M, K]`, `op(B)` is `[K, N]` and `C` is `[M, N]`. Leading dimensions allow strided views
/// (one attention head inside a `[tokens, heads * head_dim]` buffer).
///
/// All model time should be here (docs/DESIGN.md, *Performance model*): callers pass whole token batches.
@inline(__always)
public func sgemm(
    transA: Bool, transB: Bool, M: Int, N: Int, K: Int,
    alpha: Float = 1, A: UnsafePointer<Float>, lda: Int,
    B: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, C: UnsafeMutablePointer<Float>, ldc: Int
) {
    if M == 0 || N == 0 { return }
    // Decoding multiplies a few token rows by whole weight matrices. OpenBLAS's sgemm repacks the
    // weight operand on every call, which at M <= 8 costs as much as the product itself; the
    // row-streaming kernel reads each weight row once for all M rows instead.
    if !transA && transB && M <= smallMLimit && N * K >= 4096 && smallMEnabled {
        Profile.measure("gemm") {
            sgemmSmallM(M: M, N: N, K: K, alpha: alpha, A: A, lda: lda, B: B, ldb: ldb, beta: beta, C: C, ldc: ldc)
        }
        return
    }
    Profile.measure("gemm") {
        cblas_sgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            Int32(M), Int32(N), Int32(K), alpha, A, Int32(lda), B, Int32(ldb), beta, C, Int32(ldc))
    }
}

/// Largest M sent to `sgemmSmallM` (above it OpenBLAS's packing pays for itself).
let smallMLimit = 8
/// `MIXMOE_SMALL_M=0` sends small-M products to OpenBLAS too (for A/B benchmarks).
let smallMEnabled: Bool = getenv("MIXMOE_SMALL_M").map { String(cString: $0) != "0" } ?? true

/// `C[M, N] = alpha * A[M, K] * B[N, K]^T + beta * C` for small M: each row of B (a weight row) is
/// streamed once and dotted with all M rows of A, split over threads by rows of B. Memory-bound
/// at M = 1, as decoding is. Checked against `sgemmNaive` in GEMMTests.
public func sgemmSmallM(
    M: Int, N: Int, K: Int, alpha: Float, A: UnsafePointer<Float>, lda: Int,
    B: UnsafePointer<Float>, ldb: Int, beta: Float, C: UnsafeMutablePointer<Float>, ldc: Int
) {
    smallMKernel(FloatRow.self, M: M, N: N, K: K, alpha: alpha, A: A, lda: lda, B: B, ldb: ldb, beta: beta, C: C, ldc: ldc)
}

/// How the small-M kernel reads a weight row in its storage type: 16 lanes, or one element, as fp32.
protocol WeightRow {
    associatedtype Element
    static func lanes(_ p: UnsafePointer<Element>) -> SIMD16<Float>
    static func one(_ p: UnsafePointer<Element>) -> Float
}

enum FloatRow: WeightRow {
    @inline(__always) static func lanes(_ p: UnsafePointer<Float>) -> SIMD16<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self) }
    @inline(__always) static func one(_ p: UnsafePointer<Float>) -> Float { p.pointee }
}

/// The small-M product for weights of any storage type `R` (specialised per type by the compiler).
@inline(__always)
func smallMKernel<R: WeightRow>(
    _: R.Type, M: Int, N: Int, K: Int, alpha: Float, A: UnsafePointer<Float>, lda: Int,
    B: UnsafePointer<R.Element>, ldb: Int, beta: Float, C: UnsafeMutablePointer<Float>, ldc: Int
) {
    precondition(M >= 1 && M <= smallMLimit, "small-M GEMM: M must be in 1...\(smallMLimit)")
    let K16 = K & ~15
    Parallel.forChunks(N, grain: max(16, 32_768 / max(K, 1))) { rows in
        // acc[m]: 16-wide partial dot products of A row m with the current B row
        withUnsafeTemporaryAllocation(of: SIMD16<Float>.self, capacity: smallMLimit) { acc in
            for j in rows {
                let b = B + j * ldb
                for m in 0..<M { acc[m] = SIMD16<Float>() }
                var k = 0
                while k < K16 {
                    let w = R.lanes(b + k)
                    for m in 0..<M {
                        acc[m] += w * UnsafeRawPointer(A + m * lda + k).loadUnaligned(as: SIMD16<Float>.self)
                    }
                    k += 16
                }
                for m in 0..<M {
                    var t = acc[m].sum()
                    let a = A + m * lda
                    for p in K16..<K { t += a[p] * R.one(b + p) }
                    let c = C + m * ldc + j
                    c.pointee = alpha * t + (beta == 0 ? 0 : beta * c.pointee)
                }
            }
        }
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
