/// Interleaves two batch sources in a fixed pattern (`ratioA` micro-batches of A per one of B),
/// for one-stage training on monolingual and parallel data together. Its cursor counts
/// micro-batches; `seek` replays the pattern, so a resumed run draws the same batches.
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

    /// Replays: each child is rewound to 0 and advanced by the draws it would have served.
    /// Only exact for `nextBatch(sequences:)`-style children with fixed draw sizes; training loops
    /// record their own cursors through checkpoints.
    public func seek(_ c: Int) {
        var na = 0, nb = 0
        for i in 0..<c { if pickA(i) { na += 1 } else { nb += 1 } }
        a.seek(na); b.seek(nb)
        cursor = c
    }

    public var epochs: Double { max(a.epochs, b.epochs) }
}
