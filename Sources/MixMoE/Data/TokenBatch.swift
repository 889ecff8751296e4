import Foundation

/// A `[batch, seq]` block of token ids with next-token targets (negative = no loss).
public struct TokenBatch: Sendable {
    public var ids: [Int32]
    public var targets: [Int32]
    public var batch: Int
    public var seq: Int
    /// 1 = real token, 0 = padding (excluded from MoE load balance); nil = all real.
    public var mask: [Float]?
    /// MoE-LPR: 1 = a token of an original language, routed to expert 0 by the LPR loss; nil = none.
    public var lprMask: [Float]?
    public init(ids: [Int32], targets: [Int32], mask: [Float]? = nil, lprMask: [Float]? = nil, batch: Int, seq: Int) {
        precondition(ids.count == batch * seq && targets.count == ids.count, "batch shape mismatch")
        precondition(mask == nil || mask!.count == ids.count, "mask shape mismatch")
        precondition(lprMask == nil || lprMask!.count == ids.count, "LPR mask shape mismatch")
        self.ids = ids; self.targets = targets; self.mask = mask; self.lprMask = lprMask; self.batch = batch; self.seq = seq
    }
    public var validTokens: Int { targets.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) } }

    /// The same rows in batches of at most `maxTokens` tokens (at least one row each).
    public func split(maxTokens: Int) -> [TokenBatch] {
        let rows = max(1, maxTokens / seq)
        return stride(from: 0, to: batch, by: rows).map { r in
            let n = min(rows, batch - r), span = (r * seq)..<((r + n) * seq)
            return TokenBatch(
                ids: Array(ids[span]), targets: Array(targets[span]), mask: mask.map { Array($0[span]) },
                lprMask: lprMask.map { Array($0[span]) }, batch: n, seq: seq)
        }
    }
}

/// Where training batches come from (packed text, translation pairs, ...). Its position is one
/// integer so a checkpoint can record it and a resumed run neither loses nor repeats data.
public protocol BatchSource: AnyObject {
    func nextBatch(sequences: Int) -> TokenBatch
    /// A micro-batch of at most `tokens` (padded) tokens.
    func nextBatch(tokens: Int) -> TokenBatch
    var cursor: Int { get }
    func seek(_ cursor: Int)
    var epochs: Double { get }
}
