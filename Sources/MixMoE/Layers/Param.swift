/// One named view of the model's parameter buffer as a layer sees it: values, gradient and the
/// live trainable flag (freezing is a flag on the view, read at backward time).
public struct Param: @unchecked Sendable {
    public let store: ParameterStore  // strong: a layer must never outlive the buffer its pointers point into
    public let id: Int
    public let g: UnsafeMutablePointer<Float>
    /// fp32 values (a programmer error for a view held in bf16: layers that may read one use
    /// `operand`). Looked up on each use, so it always follows the view's storage.
    public var w: UnsafeMutablePointer<Float> { store.w(id) }
    /// The values in their storage type, as a GEMM operand.
    public var operand: WeightOperand { store.operand(id) }

    public init(_ store: ParameterStore, _ name: String) {
        guard let id = store.id(name) else { preconditionFailure("no parameter \(name)") }
        self.store = store
        self.id = id
        g = store.g(id)
    }

    public var trainable: Bool { store.isTrainable(id) }
    public var count: Int { store.entries[id].count }
    public var name: String { store.entries[id].name }
}
