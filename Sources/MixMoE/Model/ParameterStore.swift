/// All parameters of a model in one contiguous buffer with named views (llm.c's layout).
///
/// Gradients and the optimiser's moments use the same offsets, so the optimiser is one loop over
/// the trainable views, and freezing is a flag per view. Views are registered once; the buffers are
/// allocated by `finalize()` and never move afterwards, so layers may keep raw pointers.
public final class ParameterStore: @unchecked Sendable {
    public struct Entry: Sendable {
        public let name: String
        public let shape: [Int]
        public let offset: Int
        public var count: Int { shape.reduce(1, *) }
        public var trainable: Bool
    }

    public private(set) var entries: [Entry] = []
    public private(set) var index: [String: Int] = [:]
    public private(set) var count = 0
    public private(set) var params: FloatBuffer = FloatBuffer(count: 0)
    public private(set) var grads: FloatBuffer = FloatBuffer(count: 0)
    public private(set) var isFinalized = false

    public init() {}

    /// A finalized, zero-filled store with the views of `layout`, in order.
    public convenience init(layout: [(String, [Int])]) {
        self.init()
        for (name, shape) in layout { add(name, shape) }
        finalize()
    }

    /// Registers a view; returns its id. Only before `finalize()`.
    @discardableResult
    public func add(_ name: String, _ shape: [Int], trainable: Bool = true) -> Int {
        precondition(!isFinalized, "ParameterStore.add after finalize")
        precondition(index[name] == nil, "duplicate parameter \(name)")
        let e = Entry(name: name, shape: shape, offset: count, trainable: trainable)
        index[name] = entries.count
        entries.append(e)
        count += e.count
        return entries.count - 1
    }

    public func finalize() {
        precondition(!isFinalized)
        params = FloatBuffer(count: count)
        grads = FloatBuffer(count: count)
        isFinalized = true
    }

    public func id(_ name: String) -> Int? { index[name] }

    /// Pointer to a view's values.
    public func w(_ id: Int) -> UnsafeMutablePointer<Float> { params.ptr + entries[id].offset }
    /// Pointer to a view's gradient.
    public func g(_ id: Int) -> UnsafeMutablePointer<Float> { grads.ptr + entries[id].offset }

    public func isTrainable(_ id: Int) -> Bool { entries[id].trainable }

    /// Sets every view's trainable flag from a predicate on its name.
    public func setTrainable(_ predicate: (String) -> Bool) {
        for i in entries.indices { entries[i].trainable = predicate(entries[i].name) }
    }

    public var trainableCount: Int { entries.filter(\.trainable).reduce(0) { $0 + $1.count } }

    public func values(_ name: String) -> [Float] {
        guard let i = index[name] else { return [] }
        return Array(UnsafeBufferPointer(start: w(i), count: entries[i].count))
    }

    /// Zeroes the gradients of the trainable views only: frozen views' gradients are never
    /// written, so their pages of the (lazily mapped) gradient buffer never become resident.
    public func zeroGrads() {
        for e in entries where e.trainable { (grads.ptr + e.offset).update(repeating: 0, count: e.count) }
    }
}
