import Foundation

/// Memory-read bandwidth, the limit of batch-1 decoding (every weight is read once per token):
/// the sum of a buffer far larger than the caches, on all of ``Parallel``'s threads.
public final class MemoryBandwidth {
    public let bytes: Int
    let buffer: FloatBuffer
    let partial: FloatBuffer
    /// The last sum (kept so the reads cannot be optimised away).
    public private(set) var checksum: Float = 0

    /// A buffer of `mib` MiB, every page touched before any timing.
    public init(mib: Int) {
        let n = mib * 1_048_576 / 4
        bytes = n * 4
        buffer = FloatBuffer(count: n)
        for i in 0..<n { buffer[i] = Float(i & 1023) }
        partial = FloatBuffer(count: max(Parallel.threads, 1))
    }

    /// One pass over the buffer: each thread sums its contiguous chunk with 8 independent
    /// accumulators, so the loop is bound by loads, not by add latency.
    public func sweep() {
        let p = buffer.ptr, q = partial.ptr, n = buffer.count
        let chunks = Parallel.chunkCount(n, grain: 1 << 20)
        Parallel.forChunksIndexed(n, grain: 1 << 20) { c, r in
            var acc = SIMD8<Float>()
            var i = r.lowerBound
            while i + 8 <= r.upperBound {
                acc += UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
                i += 8
            }
            var t = acc.sum()
            while i < r.upperBound { t += p[i]; i += 1 }
            q[c] = t
        }
        var s: Float = 0
        for c in 0..<chunks { s += q[c] }
        checksum = s
    }
}
