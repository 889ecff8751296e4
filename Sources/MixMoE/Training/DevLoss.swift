import Foundation

/// Mean cross-entropy per target token on held-out translation pairs (the dev split, in ALMA's
/// prompt format, loss on the target tokens and EOS only, as in training): the curve that shows
/// when a fine-tuning budget has stopped paying.
///
/// The pairs are cut once into padded batches of at most `tokensPerBatch` tokens (sorted by
/// length, so little padding); every evaluation runs the same batches forward only.
public struct DevLoss: Sendable {
    public let batches: [TokenBatch]
    /// Target tokens scored per evaluation (each pair's target and its EOS).
    public let targetTokens: Int
    public let pairs: Int

    public init(examples: [MTExample], pad: Int32, tokensPerBatch: Int = 4096) {
        let sorted = examples.sorted { $0.length < $1.length }
        var out: [TokenBatch] = [], chunk: [MTExample] = []
        for e in sorted {
            // sorted ascending: e is the longest so far, so the padded size is e.length per row
            if !chunk.isEmpty && e.length * (chunk.count + 1) > tokensPerBatch {
                out.append(MTDataset.collate(chunk, pad: pad))
                chunk = []
            }
            chunk.append(e)
        }
        if !chunk.isEmpty { out.append(MTDataset.collate(chunk, pad: pad)) }
        batches = out
        targetTokens = out.reduce(0) { $0 + $1.validTokens }
        pairs = examples.count
    }

    /// The first `perDirection` pairs of each direction of `bitexts` (both directions of each).
    public static func build(
        bitexts: [Bitext], perDirection: Int, tokenizer: BPETokenizer, eos: Int32, maxTokens: Int, tokensPerBatch: Int = 4096
    ) -> DevLoss {
        let all = MTDataset.build(bitexts: bitexts, directions: nil, tokenizer: tokenizer, eos: eos, maxTokens: maxTokens).examples
        var taken: [Direction: Int] = [:], chosen: [MTExample] = []
        for e in all where taken[e.direction, default: 0] < perDirection {
            taken[e.direction, default: 0] += 1
            chosen.append(e)
        }
        return DevLoss(examples: chosen, pad: eos, tokensPerBatch: tokensPerBatch)
    }

    /// The mean loss of `m` over every target token. Forward only: no gradient, no optimiser
    /// state and no expert statistics are touched.
    public func evaluate(_ m: DecoderModel) throws -> Double {
        let collect = m.moe.collectStats
        m.moe.collectStats = false
        defer { m.moe.collectStats = collect }
        var sum = 0.0, count = 0
        for b in batches {
            try m.setBatch(ids: b.ids, targets: b.targets, mask: b.mask, batch: b.batch, seq: b.seq)
            m.forward(batch: b.batch, seq: b.seq)
            let l = m.loss(batch: b.batch, seq: b.seq)
            sum += l.sum; count += l.count
        }
        return count == 0 ? .nan : sum / Double(count)
    }
}

/// One point of a dev-loss curve: after `step` optimiser steps of the stage `label`.
public struct DevPoint: Sendable, Codable, Equatable {
    public var label: String
    public var step: Int
    public var loss: Double
}
