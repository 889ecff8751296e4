import CBLAS
import Dispatch
import Foundation
import Synchronization

/// The one place that decides how many threads numeric code uses: our own loops and OpenBLAS's.
///
/// Work is split into `threads` contiguous chunks in a fixed way, so results are deterministic for
/// a given thread count (reductions combine per-chunk partials in chunk order).
public enum Parallel {
    /// The thread count (`setThreads`); read on every region, so an atomic rather than the lock.
    public static var threads: Int { threadCount.load(ordering: .relaxed) }
    private static let threadCount = Atomic<Int>(1)
    /// True while a parallel region (`forChunks*`, `forEachTask` with several slots) runs. Set and
    /// cleared by the thread that opened the region; code inside reads it to stay single-threaded
    /// (no nested regions) and to keep worker threads out of shared profiling state.
    public static var inRegion: Bool { regionOpen.load(ordering: .relaxed) }
    private static let regionOpen = Atomic<Bool>(false)

    /// The pools, changed under one lock.
    private struct State {
        /// Persistent workers for our parallel regions (`threads - 1` of them; the caller is the
        /// last). Dispatch's `concurrentPerform` wakes sleeping threads on every call, which costs
        /// as much as a small model's GEMM when decoding; these spin briefly between regions first.
        var pool: WorkerPool? = nil
        /// Pools by worker count, kept for the process's life (their threads never exit).
        var pools: [Int: WorkerPool] = [:]
    }
    private static let state = Mutex(State())

    /// Sets our pool size and OpenBLAS's. Call once at start-up (the CLI's `--threads`).
    public static func setThreads(_ n: Int) {
        precondition(n >= 1, "thread count must be >= 1")
        state.withLock { s in
            threadCount.store(n, ordering: .relaxed)
            openblas_set_num_threads(Int32(n))
            if n > 1 && s.pools[n - 1] == nil { s.pools[n - 1] = WorkerPool(workers: n - 1) }
            s.pool = n > 1 ? s.pools[n - 1] : nil
        }
    }

    /// `MIXMOE_POOL=0` uses Dispatch instead of the pool (for A/B benchmarks).
    static let usePool: Bool = ProcessInfo.processInfo.environment["MIXMOE_POOL"] != "0"

    /// The current pool, read once per region.
    private static var pool: WorkerPool? { state.withLock { $0.pool } }

    /// Runs `body(c)` for every `c` in `0..<n` on the pool (or Dispatch), returning when all ran.
    @inline(__always)
    static func perform(_ n: Int, _ body: (Int) -> Void) {
        if usePool, let pool {
            pool.run(n, body)
        } else {
            withoutActuallyEscaping(body) { body in
                let box = UncheckedBox(body)
                DispatchQueue.concurrentPerform(iterations: n) { box.value($0) }
            }
        }
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
        let wasInRegion = regionOpen.exchange(true, ordering: .relaxed)
        defer { regionOpen.store(wasInRegion, ordering: .relaxed) }
        perform(chunks) { c in body(c, chunkRange(n, chunks: chunks, index: c)) }
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
        let wasInRegion = regionOpen.exchange(true, ordering: .relaxed)
        defer { openblas_set_num_threads(Int32(threads)); regionOpen.store(wasInRegion, ordering: .relaxed) }
        perform(slots) { c in
            for t in chunkRange(n, chunks: slots, index: c) { body(t, c) }
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

/// A fixed set of worker threads that run the chunks of one parallel region at a time with the
/// calling thread. Chunks are claimed from one atomic word holding (region, chunk count, next
/// chunk), so a worker that wakes late can never claim a chunk of a later region. Which thread runs
/// a chunk does not change the result (chunks write disjoint outputs; partial sums are combined in
/// chunk order). Between regions a worker spins briefly, then sleeps on a semaphore.
final class WorkerPool: @unchecked Sendable {
    let workers: Int
    private let word = Atomic<Int>(0)  // region << 40 | chunks << 20 | next chunk
    private let pending = Atomic<Int>(0)  // chunks of the current region not finished
    private let sleepers = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)  // a region is in flight
    private let wake = DispatchSemaphore(value: 0)
    private var job: UnsafeRawPointer? = nil  // the region's body; valid while chunks are pending
    private var region = 0
    /// Spin iterations before a worker sleeps (tens of microseconds).
    private let spinLimit = 20_000
    private static let mask20 = (1 << 20) - 1

    init(workers: Int) {
        self.workers = workers
        for _ in 0..<workers {
            let t = Thread { self.loop() }  // the pool lives as long as its threads: the process
            t.stackSize = 1 << 20
            t.start()
        }
    }

    private func loop() {
        var seen = 0
        while true {
            var spins = 0
            while word.load(ordering: .acquiring) >> 40 == seen {
                spins += 1
                if spins < spinLimit { continue }
                sleepers.add(1, ordering: .sequentiallyConsistent)
                if word.load(ordering: .sequentiallyConsistent) >> 40 == seen { wake.wait() }
                sleepers.subtract(1, ordering: .sequentiallyConsistent)
                spins = 0
            }
            seen = word.load(ordering: .acquiring) >> 40
            drain(seen)
        }
    }

    /// Claims and runs chunks of region `r` until none is left.
    private func drain(_ r: Int) {
        var v = word.load(ordering: .acquiring)
        while v >> 40 == r && v & Self.mask20 < (v >> 20) & Self.mask20 {
            let (done, now) = word.compareExchange(expected: v, desired: v + 1, ordering: .acquiringAndReleasing)
            if !done { v = now; continue }
            job!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(v & Self.mask20)
            pending.subtract(1, ordering: .releasing)
            v = word.load(ordering: .acquiring)
        }
    }

    func run(_ n: Int, _ body: (Int) -> Void) {
        precondition(n <= Self.mask20, "too many chunks")
        // One region at a time: a second thread computing meanwhile (a server's engine beside
        // other work, tests in parallel) runs its chunks itself, in order: the same chunks, so
        // the same results, and the region in flight keeps its job, count and pending chunks.
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            for c in 0..<n { body(c) }
            return
        }
        defer { busy.store(false, ordering: .releasing) }
        withoutActuallyEscaping(body) { body in
            var f: (Int) -> Void = body
            withUnsafePointer(to: &f) { p in
                job = UnsafeRawPointer(p)
                region = (region + 1) & ((1 << 23) - 1)
                pending.store(n, ordering: .relaxed)
                word.store(region << 40 | n << 20, ordering: .sequentiallyConsistent)
                let s = sleepers.load(ordering: .sequentiallyConsistent)
                for _ in 0..<s { wake.signal() }
                drain(region)
                while pending.load(ordering: .acquiring) > 0 {}
                job = nil
            }
        }
    }
}
