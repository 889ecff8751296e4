import CBLAS
import Foundation

/// The storage type of a parameter view. Compute is always fp32; `bf16` keeps a frozen weight
/// matrix in half the bytes and widens it per tile where a GEMM reads it (`--dtype bf16`).
public enum DType: String, Codable, Sendable, CaseIterable {
    case f32, bf16

    /// Bytes per element.
    public var bytes: Int { self == .f32 ? 4 : 2 }
}

/// bfloat16: the upper 16 bits of an IEEE-754 binary32 (sign, 8 exponent bits, 7 mantissa
/// bits), the type most published Llama checkpoints are stored in. Widening is exact (append 16
/// zero bits); narrowing rounds to nearest, ties to even, as `torch.Tensor.to(torch.bfloat16)` does.
public enum BF16 {
    /// Round to nearest even; NaN stays a quiet NaN of the same sign, overflow gives infinity.
    @inline(__always)
    public static func round(_ x: Float) -> UInt16 {
        let b = x.bitPattern
        if x.isNaN { return UInt16(truncatingIfNeeded: b >> 16) | 0x0040 }
        return UInt16(truncatingIfNeeded: (b &+ 0x7FFF &+ ((b >> 16) & 1)) >> 16)
    }

    /// The exact fp32 value of a bf16 bit pattern.
    @inline(__always)
    public static func float(_ h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }

    /// `dst[i] = float(src[i])`, 16 lanes at a time.
    @inline(__always)
    public static func widen(_ src: UnsafePointer<UInt16>, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + 16 <= count {
            let w = widen16(src + i)
            UnsafeMutableRawPointer(dst + i).storeBytes(of: w, as: SIMD16<Float>.self)
            i += 16
        }
        while i < count { dst[i] = float(src[i]); i += 1 }
    }

    /// 16 bf16 values at `p` widened to fp32 (a zero-extend and a shift).
    @inline(__always)
    static func widen16(_ p: UnsafePointer<UInt16>) -> SIMD16<Float> {
        let h = UnsafeRawPointer(p).loadUnaligned(as: SIMD16<UInt16>.self)
        return unsafeBitCast(SIMD16<UInt32>(truncatingIfNeeded: h) &<< 16, to: SIMD16<Float>.self)
    }

    /// `dst[i] = round(src[i])`.
    public static func narrow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<UInt16>, count: Int) {
        Parallel.forChunks(count, grain: 1 << 16) { r in
            for i in r { dst[i] = round(src[i]) }
        }
    }
}

/// A fixed block of bf16 values with a stable address; like ``FloatBuffer``, large blocks are
/// anonymous maps whose pages become resident only where written.
public final class HalfBuffer: @unchecked Sendable {
    public let count: Int
    public let ptr: UnsafeMutablePointer<UInt16>
    private let bytes: Int

    public init(count: Int) {
        precondition(count >= 0, "negative buffer size")
        self.count = count
        bytes = 2 * Swift.max(count, 1)
        guard let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0), p != MAP_FAILED
        else { fatalError("HalfBuffer: cannot map \(bytes) bytes: \(String(cString: strerror(errno)))") }
        ptr = p.bindMemory(to: UInt16.self, capacity: Swift.max(count, 1))
    }

    deinit { munmap(ptr, bytes) }
}

/// A weight matrix as a GEMM reads it: fp32 values, or bf16 values widened per tile.
public enum WeightOperand {
    case f32(UnsafePointer<Float>)
    case bf16(UnsafePointer<UInt16>)

    public var dtype: DType {
        switch self {
        case .f32: return .f32
        case .bf16: return .bf16
        }
    }
}

/// `C = alpha * A * op(B) + beta * C` with `A` `[M, K]` fp32 and the weight `B` in its storage
/// type: `op(B) = B^T` with `B` `[N, K]` (a forward `x W^T`) or `op(B) = B` with `B` `[K, N]`
/// (a backward `dy W`). fp32 weights go to ``sgemm``; bf16 weights go to a small-M kernel that
/// widens each weight row as it streams it (decoding), or are widened in blocks of rows into a
/// scratch tile for OpenBLAS (training, prefill). Checked against ``sgemmNaive`` in BF16Tests.
public func gemm(
    transB: Bool, M: Int, N: Int, K: Int, alpha: Float = 1, A: UnsafePointer<Float>, lda: Int,
    B: WeightOperand, ldb: Int, beta: Float = 0, C: UnsafeMutablePointer<Float>, ldc: Int
) {
    switch B {
    case .f32(let b):
        sgemm(transA: false, transB: transB, M: M, N: N, K: K, alpha: alpha, A: A, lda: lda, B: b, ldb: ldb, beta: beta, C: C, ldc: ldc)
    case .bf16(let b):
        if M == 0 || N == 0 { return }
        Profile.measure("gemm") {
            if transB && M <= smallMLimit && smallMEnabled {
                gemmSmallMBF16(M: M, N: N, K: K, alpha: alpha, A: A, lda: lda, B: b, ldb: ldb, beta: beta, C: C, ldc: ldc)
            } else {
                gemmTiledBF16(transB: transB, M: M, N: N, K: K, alpha: alpha, A: A, lda: lda, B: b, ldb: ldb, beta: beta, C: C, ldc: ldc)
            }
        }
    }
}

/// ``sgemmSmallM`` with a bf16 `B [N, K]`: each weight row is widened 16 lanes at a time in
/// registers as it is streamed, so decoding reads half the bytes of fp32.
public func gemmSmallMBF16(
    M: Int, N: Int, K: Int, alpha: Float, A: UnsafePointer<Float>, lda: Int,
    B: UnsafePointer<UInt16>, ldb: Int, beta: Float, C: UnsafeMutablePointer<Float>, ldc: Int
) {
    smallMKernel(BF16Row.self, M: M, N: N, K: K, alpha: alpha, A: A, lda: lda, B: B, ldb: ldb, beta: beta, C: C, ldc: ldc)
}

enum BF16Row: WeightRow {
    @inline(__always) static func lanes(_ p: UnsafePointer<UInt16>) -> SIMD16<Float> { BF16.widen16(p) }
    @inline(__always) static func one(_ p: UnsafePointer<UInt16>) -> Float { BF16.float(p.pointee) }
}

/// The widened tile, kept per thread between calls: a fresh 16 MB allocation per GEMM would be a
/// fresh map whose pages fault in on every call (hundreds of calls per training step).
final class TileScratch {
    private(set) var ptr: UnsafeMutablePointer<Float>
    private(set) var capacity: Int
    init(_ n: Int) { ptr = .allocate(capacity: n); capacity = n }
    deinit { ptr.deallocate() }

    /// This thread's scratch of at least `n` floats.
    static func current(_ n: Int) -> UnsafeMutablePointer<Float> {
        let key = "mixmoe.bf16-tile"
        if let s = Thread.current.threadDictionary[key] as? TileScratch, s.capacity >= n { return s.ptr }
        let s = TileScratch(n)
        Thread.current.threadDictionary[key] = s
        return s.ptr
    }
}

/// fp32 elements of a widened tile (`MIXMOE_BF16_TILE_MB`, default 4 MB). Measured on a stage-2
/// step of the 1B shape (docs/PERFORMANCE.md, *1B scale*): 4 MB tiles beat 1 MB (more OpenBLAS
/// calls, each re-packing the activations or re-reading C) and 16 MB (the tile no longer stays in
/// cache between widening and the GEMM reading it).
let bf16TileElements: Int = (getenv("MIXMOE_BF16_TILE_MB").flatMap { Int(String(cString: $0)) } ?? 4) << 18

/// Widen tiles on all threads only for products of at most this many rows
/// (`MIXMOE_BF16_PARALLEL_WIDEN_ROWS`): at training sizes our threads waking between OpenBLAS
/// calls compete with OpenBLAS's spinning workers (measured 7% slower); at small M the widening is
/// most of the work.
let bf16ParallelWidenRows: Int = getenv("MIXMOE_BF16_PARALLEL_WIDEN_ROWS").flatMap { Int(String(cString: $0)) } ?? 64

/// Rows of the bf16 weight widened into an fp32 tile (4 MB by default), one OpenBLAS call per tile:
/// for `transB` tiles of N (columns of C), otherwise tiles of K accumulated into C. The widening
/// is O(N K) against the GEMM's O(M N K), so at training and prefill sizes it costs little.
public func gemmTiledBF16(
    transB: Bool, M: Int, N: Int, K: Int, alpha: Float, A: UnsafePointer<Float>, lda: Int,
    B: UnsafePointer<UInt16>, ldb: Int, beta: Float, C: UnsafeMutablePointer<Float>, ldc: Int, tileRows: Int? = nil
) {
    let width = transB ? K : N  // elements per weight row
    let tileRows = max(1, min(tileRows ?? max(16, bf16TileElements / max(width, 1)), transB ? N : K))
    let tile = TileScratch.current(tileRows * width)
    let total = transB ? N : K
    for r0 in stride(from: 0, to: total, by: tileRows) {
        let rows = min(tileRows, total - r0)
        if M <= bf16ParallelWidenRows {
            Parallel.forChunks(rows, grain: max(1, 16_384 / max(width, 1))) { rr in
                for r in rr { BF16.widen(B + (r0 + r) * ldb, tile + r * width, count: width) }
            }
        } else {
            for r in 0..<rows { BF16.widen(B + (r0 + r) * ldb, tile + r * width, count: width) }
        }
        if transB {  // C[:, r0..<r0+rows] = alpha A tile^T + beta C
            cblas_sgemm(
                CblasRowMajor, CblasNoTrans, CblasTrans, Int32(M), Int32(rows), Int32(K), alpha, A, Int32(lda),
                tile, Int32(width), beta, C + r0, Int32(ldc))
        } else {  // C += alpha A[:, r0..<r0+rows] tile (beta applied once, on the first tile)
            cblas_sgemm(
                CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(M), Int32(N), Int32(rows), alpha, A + r0, Int32(lda),
                tile, Int32(width), r0 == 0 ? beta : 1, C, Int32(ldc))
        }
    }
    if K == 0 && !transB {  // no tile ran: C = beta C
        for i in 0..<M { for j in 0..<N { C[i * ldc + j] = beta == 0 ? 0 : beta * C[i * ldc + j] } }
    }
}
