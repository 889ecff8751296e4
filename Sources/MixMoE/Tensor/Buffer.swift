/// A fixed-size, zero-initialised block of `Float`s with a stable address.
///
/// Layers keep raw pointers into these buffers, so a buffer never moves or grows; resizing means
/// allocating a new one. A final class with unsafe storage keeps ARC and copy-on-write out of the
/// inner loops (docs/DESIGN.md, *Performance model*).
public final class FloatBuffer: @unchecked Sendable {
    public let count: Int
    public let ptr: UnsafeMutablePointer<Float>

    /// Bytes held by live buffers, and the peak (benchmarks compare peak RSS with it). Buffers are
    /// created and freed outside parallel regions, so plain counters suffice.
    nonisolated(unsafe) public private(set) static var liveBytes = 0
    nonisolated(unsafe) public private(set) static var peakBytes = 0
    public static func resetPeak() { peakBytes = liveBytes }

    public init(count: Int) {
        precondition(count >= 0, "negative buffer size")
        self.count = count
        ptr = .allocate(capacity: Swift.max(count, 1))
        ptr.initialize(repeating: 0, count: Swift.max(count, 1))
        FloatBuffer.liveBytes += 4 * count
        FloatBuffer.peakBytes = Swift.max(FloatBuffer.peakBytes, FloatBuffer.liveBytes)
    }

    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { ptr.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit {
        FloatBuffer.liveBytes -= 4 * count
        ptr.deallocate()
    }

    public func zero() { ptr.update(repeating: 0, count: count) }
    public var array: [Float] { Array(UnsafeBufferPointer(start: ptr, count: count)) }
    public subscript(i: Int) -> Float {
        get { ptr[i] }
        set { ptr[i] = newValue }
    }
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
