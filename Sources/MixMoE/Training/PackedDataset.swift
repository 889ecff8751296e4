import Foundation

/// Monolingual text packed into fixed-length windows for next-token training.
///
/// Every line becomes `ids + [EOS]`; the lines are concatenated into one token stream, cut into
/// windows of `seq + 1` tokens (input = first `seq`, target = last `seq`). The window order is a
/// seeded permutation per epoch, so a run is reproducible and its position is one integer
/// (`cursor`: windows consumed so far), which a checkpoint records to resume without losing or
/// repeating data.
public final class PackedDataset: @unchecked Sendable {
    public let tokens: [Int32]
    public let seq: Int
    public let seed: UInt64
    public var windowCount: Int { max(0, (tokens.count - 1) / seq) }
    public private(set) var cursor = 0
    private var epochOrder: (epoch: Int, order: [Int])? = nil

    public init(tokens: [Int32], seq: Int, seed: UInt64) {
        self.tokens = tokens
        self.seq = seq
        self.seed = seed
    }

    /// Tokenises `files`: one segment per line (tab-separated fields as separate segments), or
    /// JSON lines `{"text": ...}` for `*.jsonl`.
    public static func tokenize(
        files: [URL], tokenizer: BPETokenizer, eos: Int32?,
        progress: ((String, Int) -> Void)? = nil
    ) throws -> [Int32] {
        var stream: [Int32] = []
        for f in files {
            let before = stream.count
            let lines = f.pathExtension == "jsonl" ? try Corpus.readMonolingual(f.path) : try readLines(f)
            for line in lines {
                for field in line.split(separator: "\t") where !field.isEmpty {
                    stream += tokenizer.encode(String(field))
                    if let eos { stream.append(eos) }
                }
            }
            progress?(f.path, stream.count - before)
        }
        return stream
    }

    /// Window order of an epoch: a Fisher-Yates shuffle seeded by (seed, epoch).
    func order(epoch: Int) -> [Int] {
        if let e = epochOrder, e.epoch == epoch { return e.order }
        let o = SplitMix64.epochPermutation(windowCount, seed: seed, epoch: epoch)
        epochOrder = (epoch, o)
        return o
    }

    /// The next `sequences` windows as one batch; advances the cursor (wrapping into new epochs).
    public func nextBatch(sequences: Int) -> TokenBatch {
        precondition(windowCount > 0, "dataset has no full window")
        var ids: [Int32] = [], tgt: [Int32] = []
        ids.reserveCapacity(sequences * seq); tgt.reserveCapacity(sequences * seq)
        for _ in 0..<sequences {
            let w = order(epoch: cursor / windowCount)[cursor % windowCount]
            let start = w * seq
            ids += tokens[start..<(start + seq)]
            tgt += tokens[(start + 1)...(start + seq)]
            cursor += 1
        }
        return TokenBatch(ids: ids, targets: tgt, batch: sequences, seq: seq)
    }

    /// Restores the position recorded in a checkpoint.
    public func seek(_ c: Int) { cursor = c }

    /// Epochs consumed so far (fractional).
    public var epochs: Double { windowCount > 0 ? Double(cursor) / Double(windowCount) : 0 }
}

extension PackedDataset {
    /// Every window once, in order (evaluation), `sequences` windows per batch (last may be smaller).
    public func sequentialBatches(sequences: Int) -> [TokenBatch] {
        stride(from: 0, to: windowCount, by: sequences).map { first in
            let n = min(sequences, windowCount - first)
            var ids: [Int32] = [], tgt: [Int32] = []
            for w in first..<(first + n) {
                ids += tokens[(w * seq)..<(w * seq + seq)]
                tgt += tokens[(w * seq + 1)...(w * seq + seq)]
            }
            return TokenBatch(ids: ids, targets: tgt, batch: n, seq: seq)
        }
    }
}

/// Held-out language-model quality of a text file.
public struct PerplexityResult: Sendable, Encodable {
    public let file: String
    public let tokens: Int
    public let loss: Double
    public let perplexity: Double

    public init(file: String, tokens: Int, loss: Double) {
        (self.file, self.tokens, self.loss, perplexity) = (file, tokens, loss, exp(loss))
    }
}

extension DecoderModel {
    /// Token-mean cross-entropy over `file`'s lines packed like training (EOS after each line),
    /// `seq`-token windows. Text shorter than one window is evaluated as one shorter window.
    public func perplexity(file: URL, tokenizer: BPETokenizer, seq: Int = 256, batch: Int = 8) throws -> PerplexityResult {
        let eos = config.eosTokenIds.first.map(Int32.init)
        let stream = try PackedDataset.tokenize(files: [file], tokenizer: tokenizer, eos: eos)
        guard stream.count > 1 else { throw DataError.empty(file.path) }
        let T = min(seq, stream.count - 1)
        let data = PackedDataset(tokens: stream, seq: T, seed: 0)
        var sum = 0.0, n = 0
        for b in data.sequentialBatches(sequences: batch) {
            try setBatch(ids: b.ids, targets: b.targets, batch: b.batch, seq: b.seq)
            forward(batch: b.batch, seq: b.seq)
            let (s, c) = loss(batch: b.batch, seq: b.seq)
            sum += s; n += c
        }
        return PerplexityResult(file: file.path, tokens: n, loss: sum / Double(max(n, 1)))
    }
}
