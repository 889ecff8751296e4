import Foundation

/// ALMA's prompt (its code; docs/DESIGN.md, *Training*):
/// `Translate this from {Src} to {Tgt}:\n{Src}: {src}\n{Tgt}:` followed by ` {tgt}` and EOS.
public enum Prompt {
    public static func text(_ src: String, _ d: Direction) -> String {
        let s = Languages.names[d.src] ?? d.src, t = Languages.names[d.tgt] ?? d.tgt
        return "Translate this from \(s) to \(t):\n\(s): \(src)\n\(t):"
    }

    /// Prompt ids (with the tokenizer's BOS). The target is tokenised separately as " tgt" so that
    /// training and generation see the same prompt tokens.
    public static func ids(_ src: String, _ d: Direction, tokenizer: BPETokenizer) -> [Int32] {
        tokenizer.encode(text(src, d), addSpecialTokens: true)
    }
}

/// How many examples one translation pair gives when both of its directions are wanted.
public enum PairDirections: String, CaseIterable, Sendable {
    /// One example per direction (the paper's multilingual SFT: every pair both ways).
    case both
    /// One example, its direction drawn per pair: every pair seen once per epoch.
    case one

    /// The index (0 or 1) of the direction pair `pair` of file `file` gives under `.one`: one
    /// SplitMix64 output of the seed mixed with the position, so it is fixed for a corpus and seed.
    static func draw(seed: UInt64, file: Int, pair: Int) -> Int {
        var r = SplitMix64(seed: seed ^ (UInt64(file) &* 0x9E37_79B9_7F4A_7C15) ^ (UInt64(pair) &* 0xD1B5_4A32_D192_ED03))
        return Int(r.next() & 1)
    }
}

/// One training example: prompt tokens (no loss) and target tokens ending in EOS (loss).
public struct MTExample: Sendable {
    public var prompt: [Int32]
    public var target: [Int32]
    public var direction: Direction
    public var length: Int { prompt.count + target.count - 1 }  // input positions: the last token is never an input
}

/// Parallel data in ALMA's prompt format as a `BatchSource`: all directions mixed, each epoch a
/// seeded permutation, cut into pools that are sorted by length (so a batch has little padding),
/// padded on the right; loss only on the target tokens and EOS.
public final class MTDataset: BatchSource, @unchecked Sendable {
    public let examples: [MTExample]
    public let seed: UInt64
    public let pad: Int32
    public private(set) var cursor = 0
    private var epochOrder: (epoch: Int, order: [Int])? = nil
    let pool: Int

    public init(examples: [MTExample], seed: UInt64, pad: Int32, pool: Int = 512) {
        self.examples = examples; self.seed = seed; self.pad = pad; self.pool = pool
    }

    /// Builds examples from bitexts for the wanted directions (all if nil). Pairs longer than
    /// `maxTokens` (prompt + target) are dropped and counted. With `perPair == .one` each pair
    /// gives one example, in a direction drawn from `seed` and the pair's position (so an epoch
    /// sees every pair once, at half the cost of both directions).
    public static func build(
        bitexts: [Bitext], directions: Set<Direction>?, tokenizer: BPETokenizer, eos: Int32,
        maxTokens: Int = 512, perPair: PairDirections = .both, seed: UInt64 = 0
    ) -> (examples: [MTExample], dropped: Int) {
        var out: [MTExample] = [], dropped = 0
        for (f, b) in bitexts.enumerated() {
            let wanted = b.directions.filter { directions == nil || directions!.contains($0) }
            for d in wanted {
                for (i, (s, t)) in b.segments(d).enumerated() {
                    if perPair == .one && wanted.count == 2 && wanted[PairDirections.draw(seed: seed, file: f, pair: i)] != d { continue }
                    let p = Prompt.ids(s, d, tokenizer: tokenizer)
                    let tg = tokenizer.encode(" " + t) + [eos]
                    if p.count + tg.count > maxTokens { dropped += 1; continue }
                    out.append(MTExample(prompt: p, target: tg, direction: d))
                }
            }
        }
        return (out, dropped)
    }

    func order(epoch: Int) -> [Int] {
        if let e = epochOrder, e.epoch == epoch { return e.order }
        let o = SplitMix64.epochPermutation(examples.count, seed: seed, epoch: epoch)
        var bucketed: [Int] = []
        for start in stride(from: 0, to: o.count, by: pool) {
            bucketed += o[start..<min(start + pool, o.count)].sorted { (examples[$0].length, $0) < (examples[$1].length, $1) }
        }
        epochOrder = (epoch, bucketed)
        return bucketed
    }

    /// The next `sequences` examples, right-padded to the longest.
    public func nextBatch(sequences: Int) -> TokenBatch {
        var chosen: [MTExample] = []
        for _ in 0..<sequences {
            chosen.append(examples[order(epoch: cursor / examples.count)[cursor % examples.count]])
            cursor += 1
        }
        return MTDataset.collate(chosen, pad: pad)
    }

    /// Examples in order until the padded batch would exceed `tokens` (at least one).
    public func nextBatch(tokens: Int) -> TokenBatch {
        var chosen: [MTExample] = []
        var longest = 0
        while true {
            let ex = examples[order(epoch: cursor / examples.count)[cursor % examples.count]]
            let l = max(longest, ex.length)
            if !chosen.isEmpty && l * (chosen.count + 1) > tokens { break }
            chosen.append(ex); longest = l; cursor += 1
        }
        return MTDataset.collate(chosen, pad: pad)
    }

    /// Inputs = prompt + target without its last token; targets = the next token on target
    /// positions (the first target token ... EOS), -1 on the prompt and padding; mask 0 on padding.
    public static func collate(_ exs: [MTExample], pad: Int32) -> TokenBatch {
        let T = exs.map(\.length).max() ?? 1
        var ids = [Int32](repeating: pad, count: exs.count * T)
        var tgt = [Int32](repeating: -1, count: exs.count * T)
        var mask = [Float](repeating: 0, count: exs.count * T)
        for (b, e) in exs.enumerated() {
            let full = e.prompt + e.target
            for i in 0..<e.length {
                ids[b * T + i] = full[i]
                mask[b * T + i] = 1
                if i + 1 >= e.prompt.count { tgt[b * T + i] = full[i + 1] }  // predicts a target token or EOS
            }
        }
        return TokenBatch(ids: ids, targets: tgt, mask: mask, batch: exs.count, seq: T)
    }

    public func seek(_ c: Int) { cursor = c }
    public var epochs: Double { examples.isEmpty ? 0 : Double(cursor) / Double(examples.count) }
}
