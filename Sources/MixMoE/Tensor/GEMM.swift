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
///
/// Every element is the same sum in the same order whatever M is (16 lanes over k, `sum()`,
/// then the tail), so a row's result does not depend on the rows decoded beside it: batched
/// translation gives the batch-1 output. M = 1 keeps its accumulator in a register; larger M
/// go through ``smallMRows4``, four token rows per pass over a weight row (register-held
/// accumulators: the one-row-at-a-time loop kept them in memory, and at M = 8 its loads and
/// stores of partial sums, not the weights, bounded it).
@inline(__always)
func smallMKernel<R: WeightRow>(
    _: R.Type, M: Int, N: Int, K: Int, alpha: Float, A: UnsafePointer<Float>, lda: Int,
    B: UnsafePointer<R.Element>, ldb: Int, beta: Float, C: UnsafeMutablePointer<Float>, ldc: Int
) {
    precondition(M >= 1 && M <= smallMLimit, "small-M GEMM: M must be in 1...\(smallMLimit)")
    Parallel.forChunks(N, grain: max(16, 32_768 / max(K, 1))) { rows in
        for j in rows {
            let b = B + j * ldb
            var m0 = 0
            while m0 < M {
                let live = min(4, M - m0)
                var t = SIMD4<Float>()
                if live == 1 {
                    t[0] = smallMRow1(R.self, K: K, b, A + m0 * lda)
                } else {
                    // rows m0..<m0+4; past M the last row is repeated and its results dropped
                    let a = A + m0 * lda, last = M - 1 - m0
                    t = smallMRows4(R.self, K: K, b, a, a + min(1, last) * lda, a + min(2, last) * lda, a + min(3, last) * lda)
                }
                for i in 0..<live {
                    let c = C + (m0 + i) * ldc + j
                    c.pointee = alpha * t[i] + (beta == 0 ? 0 : beta * c.pointee)
                }
                m0 += 4
            }
        }
    }
}

/// The dot product of one weight row with one token row, summed as ``smallMRows4`` sums.
@inline(__always)
func smallMRow1<R: WeightRow>(_: R.Type, K: Int, _ b: UnsafePointer<R.Element>, _ a: UnsafePointer<Float>) -> Float {
    let K16 = K & ~15
    var s = SIMD16<Float>()
    var k = 0
    while k < K16 {
        s += R.lanes(b + k) * UnsafeRawPointer(a + k).loadUnaligned(as: SIMD16<Float>.self)
        k += 16
    }
    var t = s.sum()
    for p in K16..<K { t += a[p] * R.one(b + p) }
    return t
}

/// Dot products of one weight row `b` with four token rows, each summed as the one-row kernel
/// sums it: 16 lanes over `k < K & ~15`, `sum()`, then the tail in order.
@inline(__always)
func smallMRows4<R: WeightRow>(
    _: R.Type, K: Int, _ b: UnsafePointer<R.Element>, _ a0: UnsafePointer<Float>, _ a1: UnsafePointer<Float>,
    _ a2: UnsafePointer<Float>, _ a3: UnsafePointer<Float>
) -> SIMD4<Float> {
    @inline(__always) func load(_ p: UnsafePointer<Float>) -> SIMD16<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self) }
    let K16 = K & ~15
    var s0 = SIMD16<Float>(), s1 = SIMD16<Float>(), s2 = SIMD16<Float>(), s3 = SIMD16<Float>()
    var k = 0
    while k < K16 {
        let w = R.lanes(b + k)
        s0 += w * load(a0 + k)
        s1 += w * load(a1 + k)
        s2 += w * load(a2 + k)
        s3 += w * load(a3 + k)
        k += 16
    }
    var t = SIMD4<Float>(s0.sum(), s1.sum(), s2.sum(), s3.sum())
    for p in K16..<K {
        let w = R.one(b + p)
        t[0] += a0[p] * w
        t[1] += a1[p] * w
        t[2] += a2[p] * w
        t[3] += a3[p] * w
    }
    return t
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
