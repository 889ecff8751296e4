import CBLAS
import Dispatch

/// The one place that decides how many threads numeric code uses: our own loops and OpenBLAS's.
///
/// Work is split into `threads` contiguous chunks in a fixed way, so results are deterministic for
/// a given thread count (reductions combine per-chunk partials in chunk order).
public enum Parallel {
    nonisolated(unsafe) public private(set) static var threads: Int = 1
    /// True while a parallel region (`forChunks*`, `forEachTask` with several slots) runs. Set and
    /// cleared by the thread that opened the region; code inside reads it to stay single-threaded
    /// (no nested regions) and to keep worker threads out of shared profiling state.
    nonisolated(unsafe) public private(set) static var inRegion = false

    /// Sets our pool size and OpenBLAS's. Call once at start-up (the CLI's `--threads`).
    public static func setThreads(_ n: Int) {
        precondition(n >= 1, "thread count must be >= 1")
        threads = n
        openblas_set_num_threads(Int32(n))
    }

    /// Runs `body` over `0..<n` split into at most `threads` contiguous chunks.
    /// Small problems (fewer than `grain` items per chunk) run on the calling thread.
    @inline(__always)
    public static func forChunks(_ n: Int, grain: Int = 1024, _ body: (Range<Int>) -> Void) {
        forChunksIndexed(n, grain: grain) { _, r in body(r) }
    }

    /// Like `forChunks`, also passing the chunk's index (for per-chunk partial sums).
    @inline(__always)
    public static func forChunksIndexed(_ n: Int, grain: Int = 1024, _ body: (Int, Range<Int>) -> Void) {
        let chunks = chunkCount(n, grain: grain)
        if chunks <= 1 {
            if n > 0 { body(0, 0..<n) }
            return
        }
        // Chunks write disjoint outputs by construction; the box only silences the Sendable check
        // for the raw pointers the body captures.
        let wasInRegion = inRegion
        inRegion = true
        defer { inRegion = wasInRegion }
        withoutActuallyEscaping(body) { body in
            let box = UncheckedBox(body)
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                box.value(c, chunkRange(n, chunks: chunks, index: c))
            }
        }
    }

    /// The `index`-th of `chunks` near-equal contiguous ranges covering `0..<n`.
    @inline(__always)
    public static func chunkRange(_ n: Int, chunks: Int, index c: Int) -> Range<Int> {
        let base = n / chunks, extra = n % chunks
        let lo = c * base + Swift.min(c, extra)
        return lo..<(lo + base + (c < extra ? 1 : 0))
    }

    /// Runs `n` independent tasks that call BLAS: OpenBLAS is set to one thread meanwhile so each
    /// task's GEMMs run on the thread that issued them. Tasks are split into `taskSlots(n)`
    /// contiguous groups (fixed, so results are deterministic); `slot` indexes per-group scratch.
    public static func forEachTask(_ n: Int, _ body: (_ task: Int, _ slot: Int) -> Void) {
        let slots = taskSlots(n)
        if slots <= 1 {
            for t in 0..<n { body(t, 0) }
            return
        }
        openblas_set_num_threads(1)
        let wasInRegion = inRegion
        inRegion = true
        defer { openblas_set_num_threads(Int32(threads)); inRegion = wasInRegion }
        withoutActuallyEscaping(body) { body in
            let box = UncheckedBox(body)
            DispatchQueue.concurrentPerform(iterations: slots) { c in
                for t in chunkRange(n, chunks: slots, index: c) { box.value(t, c) }
            }
        }
    }

    public static func forEachTask(_ n: Int, _ body: (_ task: Int) -> Void) { forEachTask(n) { t, _ in body(t) } }

    public static func taskSlots(_ n: Int) -> Int { inRegion ? 1 : Swift.max(1, Swift.min(threads, n)) }

    /// Number of chunks `forChunks` would use (for sizing per-chunk partial buffers).
    public static func chunkCount(_ n: Int, grain: Int = 1024) -> Int {
        inRegion ? 1 : Swift.min(threads, Swift.max(1, n / Swift.max(grain, 1)))
    }
}

/// Carries a non-Sendable value into a concurrent region whose accesses are disjoint by design.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ v: T) { value = v }
}
