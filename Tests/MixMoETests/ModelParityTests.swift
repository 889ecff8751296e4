import Foundation
import Testing

@testable import MixMoE

/// Parity with transformers (fixtures from scripts/fixtures/make_model_fixtures.py): logits, loss, every
/// parameter gradient, and the losses of 5 AdamW steps with clipping.
struct ModelParityTests {
    static let cases = ["llama_untied", "llama_tied_rope3", "llama_attn_bias", "qwen2_bias"]

    func loaded(_ name: String) throws -> (DecoderModel, ModelExpectation) {
        let dir = modelFixture(name)
        let m = try DecoderModel.load(directory: dir)
        let e = try ModelExpectation(dir)
        try m.setBatch(ids: e.ids, targets: e.targets, batch: e.batch, seq: e.seq)
        return (m, e)
    }

    @Test(arguments: cases)
    func logitsMatchTransformers(_ name: String) throws {
        let (m, e) = try loaded(name)
        m.forward(batch: e.batch, seq: e.seq)
        let n = e.batch * e.seq * m.config.vocabSize
        expectClose(Array(UnsafeBufferPointer(start: m.logits.ptr, count: n)), e.logits, atol: 1e-4, "\(name) logits")
        let (sum, count) = m.loss(batch: e.batch, seq: e.seq)
        #expect(abs(Float(sum / Double(count)) - e.loss) < 1e-4, "\(name) loss \(sum / Double(count)) vs \(e.loss)")
    }

    @Test(arguments: cases)
    func gradientsMatchAutograd(_ name: String) throws {
        let (m, e) = try loaded(name)
        m.forward(batch: e.batch, seq: e.seq)
        let (_, count) = m.loss(batch: e.batch, seq: e.seq)
        m.store.zeroGrads()
        m.backward(batch: e.batch, seq: e.seq, lossScale: 1 / Float(count))
        for entry in m.store.entries {
            let ref = try #require(e.grad(entry.name), "fixture has no gradient for \(entry.name)")
            let got = Array(UnsafeBufferPointer(start: m.store.g(m.store.id(entry.name)!), count: entry.count))
            let err = relativeError(got, ref)
            #expect(err < 1e-3, "\(name) grad \(entry.name): relative error \(err)")
        }
    }

    @Test(arguments: cases)
    func fiveAdamWStepsMatchTorch(_ name: String) throws {
        let (m, e) = try loaded(name)
        // torch.optim.AdamW(lr=1e-2, weight_decay=0.01), clip_grad_norm_(1.0), same batch each step
        let opt = AdamW(store: m.store, weightDecay: 0.01)
        var losses: [Float] = []
        for _ in 0..<5 {
            m.store.zeroGrads()
            m.forward(batch: e.batch, seq: e.seq)
            let (sum, count) = m.loss(batch: e.batch, seq: e.seq)
            losses.append(Float(sum / Double(count)))
            m.backward(batch: e.batch, seq: e.seq, lossScale: 1 / Float(count))
            Gradients.clip(m.store, maxNorm: 1)
            opt.update(lr: 1e-2)
        }
        expectClose(losses, e.adamwLosses, atol: 1e-4, "\(name) AdamW losses")
    }

    /// Only layer 1's FFN trainable: those gradients still equal autograd's, every other gradient
    /// stays exactly zero (backward computed no weight gradient for frozen views).
    @Test func frozenParametersGetNoGradient() throws {
        let (m, e) = try loaded("llama_untied")
        m.store.setTrainable { $0.hasPrefix("model.layers.1.mlp.") }
        m.forward(batch: e.batch, seq: e.seq)
        let (_, count) = m.loss(batch: e.batch, seq: e.seq)
        m.store.zeroGrads()
        m.backward(batch: e.batch, seq: e.seq, lossScale: 1 / Float(count))
        for entry in m.store.entries {
            let got = Array(UnsafeBufferPointer(start: m.store.g(m.store.id(entry.name)!), count: entry.count))
            if entry.trainable {
                #expect(relativeError(got, e.grad(entry.name)!) < 1e-3, "\(entry.name)")
            } else {
                #expect(got.allSatisfy { $0 == 0 }, "\(entry.name) is frozen but got a gradient")
            }
        }
    }

    /// Accumulating two micro-batches (one sequence each, loss scaled by the total token count)
    /// gives autograd's full-batch gradient.
    @Test func gradientAccumulationEqualsFullBatch() throws {
        let dir = modelFixture("qwen2_bias")
        let m = try DecoderModel.load(directory: dir)
        let e = try ModelExpectation(dir)
        let total = e.targets.filter { $0 >= 0 }.count
        m.store.zeroGrads()
        for s in 0..<e.batch {
            let r = (s * e.seq)..<((s + 1) * e.seq)
            try m.setBatch(ids: Array(e.ids[r]), targets: Array(e.targets[r]), batch: 1, seq: e.seq)
            m.forward(batch: 1, seq: e.seq)
            m.backward(batch: 1, seq: e.seq, lossScale: 1 / Float(total))
        }
        for entry in m.store.entries {
            let got = Array(UnsafeBufferPointer(start: m.store.g(m.store.id(entry.name)!), count: entry.count))
            #expect(relativeError(got, e.grad(entry.name)!) < 1e-3, "\(entry.name)")
        }
    }
}
