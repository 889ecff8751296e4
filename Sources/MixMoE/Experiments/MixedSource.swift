/// Interleaves two batch sources in a fixed pattern (`ratioA` micro-batches of A per one of B),
/// for one-stage training on monolingual and parallel data together (the generic-MoE baseline,
/// which runs in one process without checkpoints). Its cursor counts micro-batches drawn; it
/// cannot be resumed, since the children's positions depend on the sizes of past draws.
public final class MixedSource: BatchSource {
    public let a: BatchSource, b: BatchSource
    public let ratioA: Int
    public private(set) var cursor = 0

    public init(_ a: BatchSource, _ b: BatchSource, ratioA: Int = 1) {
        self.a = a; self.b = b; self.ratioA = max(1, ratioA)
    }

    private func pickA(_ i: Int) -> Bool { i % (ratioA + 1) < ratioA }

    public func nextBatch(sequences: Int) -> TokenBatch {
        defer { cursor += 1 }
        return pickA(cursor) ? a.nextBatch(sequences: sequences) : b.nextBatch(sequences: sequences)
    }

    public func nextBatch(tokens: Int) -> TokenBatch {
        defer { cursor += 1 }
        return pickA(cursor) ? a.nextBatch(tokens: tokens) : b.nextBatch(tokens: tokens)
    }

    /// Not resumable (see the type's documentation): calling it is a programmer error.
    public func seek(_ c: Int) {
        precondition(c == cursor, "MixedSource cannot seek; checkpointed runs use a single batch source")
    }

    public var epochs: Double { max(a.epochs, b.epochs) }
}
