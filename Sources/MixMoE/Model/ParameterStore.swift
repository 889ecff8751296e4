import Foundation

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
        /// Where the values live: `params` (fp32) or `halves` (bf16, frozen matrices only).
        public var dtype: DType = .f32
    }

    public private(set) var entries: [Entry] = []
    public private(set) var index: [String: Int] = [:]
    public private(set) var count = 0
    public private(set) var params: FloatBuffer = FloatBuffer(count: 0)
    public private(set) var grads: FloatBuffer = FloatBuffer(count: 0)
    /// bf16 values of the views held in bf16, at the same offsets as `params` (mapped lazily:
    /// only those views' pages become resident, and their fp32 pages are handed back).
    public private(set) var halves: HalfBuffer?
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

    /// Pointer to a view's fp32 values (a view held in bf16 has none: read it with `operand` or
    /// `read(_:into:)`).
    public func w(_ id: Int) -> UnsafeMutablePointer<Float> {
        precondition(entries[id].dtype == .f32, "\(entries[id].name) is held in bf16; read it through operand(_:) or read(_:into:)")
        return params.ptr + entries[id].offset
    }

    /// A view's values as a GEMM operand, in their storage type.
    public func operand(_ id: Int) -> WeightOperand {
        let e = entries[id]
        return e.dtype == .f32 ? .f32(params.ptr + e.offset) : .bf16(halves!.ptr + e.offset)
    }

    /// Pointer to the bf16 values of a view held in bf16.
    public func half(_ id: Int) -> UnsafeMutablePointer<UInt16> {
        precondition(entries[id].dtype == .bf16, "\(entries[id].name) is held in fp32")
        return halves!.ptr + entries[id].offset
    }

    /// Views that `--dtype bf16` may hold in bf16: weight matrices read only by GEMMs and the
    /// embedding gather (projections, experts, embeddings, LM head). Routers, norms, biases and
    /// adapters stay fp32: they are small, and routers and adapters are what the stages train.
    public static func canHoldHalf(_ e: Entry) -> Bool {
        e.shape.count == 2 && e.name.hasSuffix(".weight") && !e.name.contains("router") && !e.name.contains("lora_")
    }

    /// Moves view `id` (frozen) to `dtype`: the values are rounded (fp32 -> bf16, to nearest
    /// even) or widened (exact), and the pages the old copy used are handed back to the kernel.
    /// `keepValues: false` skips the conversion (the view is about to be filled).
    public func hold(_ id: Int, as dtype: DType, keepValues: Bool = true) {
        let e = entries[id]
        guard e.dtype != dtype else { return }
        precondition(!e.trainable || dtype == .f32, "\(e.name) is trainable: only frozen views are held in bf16")
        if halves == nil { halves = HalfBuffer(count: count) }
        let f = params.ptr + e.offset, h = halves!.ptr + e.offset
        switch dtype {
        case .bf16:
            if keepValues { BF16.narrow(f, h, count: e.count) }
            releaseWholePages(UnsafeMutableRawPointer(f), bytes: 4 * e.count)  // a neighbour's shared pages stay
        case .f32:
            if keepValues { BF16.widen(h, f, count: e.count) }
            releaseWholePages(UnsafeMutableRawPointer(h), bytes: 2 * e.count)
        }
        entries[id].dtype = dtype
    }

    /// Holds every frozen view that ``canHoldHalf(_:)`` in `dtype` (f32: every view back to fp32),
    /// after setting the trainable flags from `trainable` when it is given.
    public func holdFrozenMatrices(as dtype: DType, trainable: ((String) -> Bool)? = nil, keepValues: Bool = true) {
        if let trainable { setTrainable(trainable) }
        for (i, e) in entries.enumerated() where dtype == .f32 || (!e.trainable && Self.canHoldHalf(e)) {
            hold(i, as: dtype, keepValues: keepValues)
        }
    }

    /// Maximal ranges of the buffer offsets covered by consecutive views that satisfy `keep`.
    public func runs(where keep: (Entry) -> Bool) -> [Range<Int>] {
        var out: [Range<Int>] = []
        for e in entries where keep(e) && e.count > 0 {
            if let last = out.last, last.upperBound == e.offset {
                out[out.count - 1] = last.lowerBound..<e.offset + e.count
            } else {
                out.append(e.offset..<e.offset + e.count)
            }
        }
        return out
    }

    /// Bytes the values take in their storage types.
    public var heldBytes: Int { entries.reduce(0) { $0 + $1.count * $1.dtype.bytes } }

    /// Pointer to a view's gradient.
    public func g(_ id: Int) -> UnsafeMutablePointer<Float> { grads.ptr + entries[id].offset }

    public func isTrainable(_ id: Int) -> Bool { entries[id].trainable }

    /// Sets every view's trainable flag from a predicate on its name.
    public func setTrainable(_ predicate: (String) -> Bool) {
        for i in entries.indices {
            entries[i].trainable = predicate(entries[i].name)
            precondition(!entries[i].trainable || entries[i].dtype == .f32, "\(entries[i].name) is held in bf16 and cannot be trained")
        }
    }

    public var trainableCount: Int { entries.filter(\.trainable).reduce(0) { $0 + $1.count } }

    public func values(_ name: String) -> [Float] {
        guard let i = index[name] else { return [] }
        return [Float](unsafeUninitializedCapacity: entries[i].count) { b, n in
            read(name, into: b.baseAddress!); n = entries[i].count
        }
    }

    /// Zeroes the gradients of the trainable views only: frozen views' gradients are never
    /// written, so their pages of the (lazily mapped) gradient buffer never become resident.
    public func zeroGrads() {
        for e in entries where e.trainable { (grads.ptr + e.offset).update(repeating: 0, count: e.count) }
    }
}
