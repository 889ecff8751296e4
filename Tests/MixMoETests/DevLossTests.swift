import Foundation
import Testing

@testable import MixMoE

/// The dev loss against closed forms and against each pair scored alone.
struct DevLossTests {
    func examples(_ m: DecoderModel) -> [MTExample] {
        // prompts and targets of different lengths, so batches pad
        let lens = [(3, 2), (5, 4), (2, 1), (7, 3), (4, 6), (6, 2)]
        return lens.enumerated().map { i, l in
            MTExample(
                prompt: (0..<l.0).map { Int32(($0 * 7 + i * 3) % 40 + 1) }, target: (0..<l.1).map { Int32(($0 * 5 + i) % 40 + 1) } + [2],
                direction: Direction("de", "en"))
        }
    }

    /// Logits all zero (LM head zeroed): every target token costs exactly ln V, and the tokens
    /// scored are every target token and EOS (closed form), whatever the batching.
    @Test(arguments: [16, 64, 4096])
    func uniformLogitsCostLnV(tokensPerBatch: Int) throws {
        let m = try DecoderModel.load(directory: modelFixture("llama_untied"))
        let head = m.store.w(m.lmHead.id)
        head.update(repeating: 0, count: m.config.vocabSize * m.config.hiddenSize)
        let ex = examples(m)
        let dev = DevLoss(examples: ex, pad: 2, tokensPerBatch: tokensPerBatch)
        #expect(dev.targetTokens == ex.reduce(0) { $0 + $1.target.count })
        #expect(abs(try dev.evaluate(m) - log(Double(m.config.vocabSize))) < 1e-6)
    }

    /// Padded batches give the mean of each pair scored alone (no padding), weighted by its
    /// target tokens.
    @Test func paddedBatchesEqualEachPairAlone() throws {
        let m = try DecoderModel.load(directory: modelFixture("llama_untied"))
        let ex = examples(m)
        var sum = 0.0, count = 0
        for e in ex {
            let b = MTDataset.collate([e], pad: 2)
            try m.setBatch(ids: b.ids, targets: b.targets, batch: 1, seq: b.seq)
            m.forward(batch: 1, seq: b.seq)
            let l = m.loss(batch: 1, seq: b.seq)
            sum += l.sum; count += l.count
        }
        let dev = DevLoss(examples: ex, pad: 2, tokensPerBatch: 40)
        #expect(dev.batches.count > 1 && dev.batches.contains { $0.batch > 1 })
        #expect(abs(try dev.evaluate(m) - sum / Double(count)) < 1e-5)
    }
}
