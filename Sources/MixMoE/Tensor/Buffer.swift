import Foundation
import Synchronization

/// A fixed-size, zero-initialised block of `Float`s with a stable address.
///
/// Layers keep raw pointers into these buffers, so a buffer never moves or grows; resizing means
/// allocating a new one. A final class with unsafe storage keeps ARC and copy-on-write out of the
/// inner loops (docs/DESIGN.md, *Performance model*).
///
/// Large buffers are anonymous memory maps: the kernel hands out zero pages on first touch, so a
/// buffer costs resident memory only where it is written. The gradient buffer has the layout of
/// all parameters, but backward writes only the trainable views: frozen views' gradients never
/// become resident (stage 2 of a 1B model trains a sixth of it).
public final class FloatBuffer: @unchecked Sendable {
    public let count: Int
    public let ptr: UnsafeMutablePointer<Float>
    private let mapped: Bool

    /// Bytes held by live buffers (reserved, touched or not), and the peak. Atomic: the server
    /// creates and frees buffers on several threads at once.
    public static var liveBytes: Int { live.load(ordering: .relaxed) }
    public static var peakBytes: Int { peak.load(ordering: .relaxed) }
    public static func resetPeak() { peak.store(live.load(ordering: .relaxed), ordering: .relaxed) }
    private static let live = Atomic<Int>(0)
    private static let peak = Atomic<Int>(0)

    private static func count(_ bytes: Int) {
        let now = live.wrappingAdd(bytes, ordering: .relaxed).newValue
        guard bytes > 0 else { return }
        var seen = peak.load(ordering: .relaxed)
        while now > seen {
            let (exchanged, current) = peak.compareExchange(expected: seen, desired: now, ordering: .relaxed)
            if exchanged { break }
            seen = current
        }
    }

    /// Buffers from this size on are mapped lazily; smaller ones come from malloc.
    static let mapThreshold = 1 << 20

    public init(count: Int) {
        precondition(count >= 0, "negative buffer size")
        self.count = count
        let bytes = 4 * Swift.max(count, 1)
        if bytes >= FloatBuffer.mapThreshold,
            let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0),
            p != MAP_FAILED
        {
            ptr = p.bindMemory(to: Float.self, capacity: Swift.max(count, 1))  // zero-filled by the kernel
            mapped = true
        } else {
            ptr = .allocate(capacity: Swift.max(count, 1))
            ptr.initialize(repeating: 0, count: Swift.max(count, 1))
            mapped = false
        }
        FloatBuffer.count(4 * count)
        FloatBuffer.counter?.add(4 * count)
    }

    /// Counts the bytes of the buffers created inside `body` on this task (the memory plan
    /// measures what a model reserves; other tasks' allocations do not count).
    public static func countingAllocations(_ body: () throws -> Void) rethrows -> Int {
        let c = ByteCounter()
        try $counter.withValue(c) { try body() }
        return c.bytes
    }

    @TaskLocal static var counter: ByteCounter?

    final class ByteCounter: @unchecked Sendable {
        private(set) var bytes = 0
        func add(_ n: Int) { bytes += n }
    }

    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { ptr.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit {
        FloatBuffer.count(-4 * count)
        if mapped { munmap(ptr, 4 * Swift.max(count, 1)) } else { ptr.deallocate() }
    }

    public func zero() { ptr.update(repeating: 0, count: count) }
    public var array: [Float] { Array(UnsafeBufferPointer(start: ptr, count: count)) }
    public subscript(i: Int) -> Float {
        get { ptr[i] }
        set { ptr[i] = newValue }
    }
}

/// Hands the whole pages inside `[p, p + bytes)` back to the kernel (MADV_DONTNEED): an anonymous
/// map reads as zeros if touched again, an unmodified private file map reads the file again. The
/// partial pages at either end stay.
func releaseWholePages(_ p: UnsafeMutableRawPointer, bytes: Int) {
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    let a = Int(bitPattern: p), lo = (a + page - 1) / page * page, hi = (a + bytes) / page * page
    if hi > lo { madvise(UnsafeMutableRawPointer(bitPattern: lo), hi - lo, Int32(MADV_DONTNEED)) }
}

/// A buffer of Int32 token ids / targets (negative target = ignored position).
public final class IntBuffer: @unchecked Sendable {
    public let count: Int
    public let ptr: UnsafeMutablePointer<Int32>
    public init(count: Int) {
        self.count = count
        ptr = .allocate(capacity: Swift.max(count, 1))
        ptr.initialize(repeating: 0, count: Swift.max(count, 1))
    }
    deinit { ptr.deallocate() }
}
