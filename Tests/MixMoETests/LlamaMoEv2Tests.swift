import Foundation
import Testing

@testable import MixMoE

/// LLaMA-MoE v2's attention MoE (Qu et al. 2024): the layer against a PyTorch reference written
/// after the reference code, the converted model against the model it came from, and decoding
/// with the KV cache against the full forward pass.
struct LlamaMoEv2Tests {
    /// Output, input gradient and every weight's gradient against
    /// scripts/fixtures/make_llama_moe_v2_fixture.py: 4 experts (2 KV heads split in two, one query head
    /// each), top-2 renormalised and scaled by 2, each expert attending only among its tokens.
    /// The reference keeps one weight matrix per expert; here they are the row blocks (q, k, v)
    /// and column blocks (o) of the layer's projections.
    @Test func attentionMatchesPyTorchReference() throws {
        let fx = try SafetensorsFile(url: fixtures.appendingPathComponent("moe/llama_moe_v2_attention.safetensors"))
        let (D, H, E, HD, B, T) = (16, 4, 4, 4, 2, 7)
        let settings = fx.floats("settings")
        var c = ModelConfig(
            vocabSize: 1, hiddenSize: D, intermediateSize: 4, numHiddenLayers: 1, numAttentionHeads: H, numKeyValueHeads: E, headDim: HD)
        c.ropeTheta = Double(settings[3])
        c.attentionMoE = AttentionMoEConfig(layers: [0], topK: Int(settings[1]), scale: Double(settings[2]))
        let pre = "model.layers.0.self_attn."
        let store = ParameterStore(layout: DecoderModel.denseLayout(c).filter { $0.0.contains("self_attn") })
        // [rows, cols] blocks of expert e: q, k, v by rows, o by columns
        func assemble(_ name: String, prefix: String = "") -> [Float] {
            let parts = (0..<E).map { fx.floats("\(prefix)\(pre)\(name).\($0).weight") }
            if name != "o_proj" { return parts.flatMap { $0 } }
            let cols = parts[0].count / D
            return (0..<D).flatMap { r in parts.flatMap { Array($0[(r * cols)..<((r + 1) * cols)]) } }
        }
        for n in ["q_proj", "k_proj", "v_proj", "o_proj"] {
            store.w(store.id(pre + n + ".weight")!).update(from: assemble(n), count: assemble(n).count)
        }
        store.w(store.id(pre + "gate.weight")!).update(from: fx.floats(pre + "gate.weight"), count: E * D)
        let rot = Rotary(config: c)
        rot.reserve(positions: T)
        let attn = Attention(store, prefix: pre.dropLast().description, config: c, rotary: rot, experts: true)
        attn.reserve(batch: B, seq: T)
        let pos = IntBuffer(count: B * T)
        for i in 0..<(B * T) { pos.ptr[i] = Int32(i % T) }
        let x = FloatBuffer(fx.floats("x")), dx = FloatBuffer(count: B * T * D)
        attn.forward(x.ptr, positions: pos.ptr, batch: B, seq: T)
        expectClose(Array(UnsafeBufferPointer(start: attn.out.ptr, count: B * T * D)), fx.floats("out"), atol: 1e-4, "out")
        store.zeroGrads()
        attn.backward(fx.floats("R"), inp: x.ptr, dinp: dx.ptr, positions: pos.ptr, batch: B, seq: T)
        expectClose(dx.array, fx.floats("dx"), atol: 1e-4, "dx")
        for n in ["q_proj", "k_proj", "v_proj", "o_proj"] {
            let e = store.entries[store.id(pre + n + ".weight")!]
            expectClose(Array(UnsafeBufferPointer(start: store.g(store.id(e.name)!), count: e.count)), assemble(n, prefix: "grad."), atol: 1e-4, "grad \(n)")
        }
        expectClose(
            Array(UnsafeBufferPointer(start: store.g(store.id(pre + "gate.weight")!), count: E * D)), fx.floats("grad." + pre + "gate.weight"),
            atol: 1e-4, "grad gate")
    }

    /// A model converted to attention experts with every expert selected, a uniform gate (all
    /// zeros) and scale = the number of experts computes the original model's logits (the
    /// transformers fixture model); with top-2 routing it does not.
    @Test(arguments: [1, 2])
    func allExpertsSelectedComputeTheDenseModel(split: Int) throws {
        let dense = try DecoderModel.load(directory: modelFixture("llama_tied_rope3"))
        let E = dense.config.numKeyValueHeads * split
        let (B, T) = (2, 9)
        let ids = (0..<(B * T)).map { Int32(($0 * 31 + 7) % dense.config.vocabSize) }
        func logits(_ m: DecoderModel) throws -> [Float] {
            try m.setBatch(ids: ids, batch: B, seq: T)
            m.forward(batch: B, seq: T)
            return m.logits.array
        }
        let want = try logits(dense)
        let all = try Upcycling.attentionExperts(dense, split: split, topK: E, scale: Double(E))
        #expect(all.config.numKeyValueHeads == E && all.config.attentionMoE?.layers == [0, 1])
        for e in all.store.entries where e.name.hasSuffix("self_attn.gate.weight") { all.store.w(all.store.id(e.name)!).update(repeating: 0, count: e.count) }
        expectClose(try logits(all), want, atol: 2e-5, "every expert selected, split \(split)")
        let top2 = try Upcycling.attentionExperts(dense, split: split, topK: 2, scale: Double(E) / 2, seed: 3)
        let got = try logits(top2)
        #expect(zip(got, want).map { abs($0 - $1) }.max()! > 1e-3, "top-2 routing changes the function")
    }

    /// A converted model with top-2 routing (a gate sharpened so tokens differ in their experts):
    /// greedy decoding with the KV cache (packed prefill, then one step at a time, the cache
    /// remembering which positions each expert saw) equals re-running the full forward pass at
    /// every step, for each prompt alone, all together, and through fewer cache rows than prompts.
    @Test func cachedDecodingEqualsTheFullForward() throws {
        let dense = try DecoderModel.load(directory: modelFixture("llama_tied_rope3"))
        let m = try Upcycling.attentionExperts(dense, split: 2, topK: 2, scale: 2, seed: 5)
        for e in m.store.entries where e.name.hasSuffix("self_attn.gate.weight") {
            let w = m.store.w(m.store.id(e.name)!)
            for i in 0..<e.count { w[i] *= 20 }
        }
        let g = Generator(model: m, stopTokens: [])
        let prompts: [[Int32]] = [[5, 17, 42], [1, 2, 3, 4, 5, 6, 7], [90, 12, 33, 8, 61], [44]]
        var one: [[Int32]] = []
        for p in prompts {
            let cached = try g.greedy([p], maxNew: [10])[0]
            #expect(try cached == g.greedyUncached(p, maxNew: 10), "prompt \(p)")
            one.append(cached)
        }
        #expect(try g.greedy(prompts, maxNew: [10, 10, 10, 10]) == one, "all together")
        #expect(try g.greedy(prompts, maxNew: [10, 10, 10, 10], slots: 2) == one, "two cache rows")
    }

    /// The recipe on the transformers fixture model (4 heads, 2 KV heads, FFN 64): MLP experts
    /// (8 slices) and attention experts (4: each KV head split in two) in both layers.
    @Test func recipeModel() throws {
        let base = try DecoderModel.load(directory: modelFixture("llama_untied"))
        let m = try LlamaMoEv2Recipe().model(from: base, seed: 0)
        let c = m.config
        #expect(c.numKeyValueHeads == 4 && c.attentionMoE == AttentionMoEConfig(layers: [0, 1], topK: 2, scale: 2))
        let moe = try #require(c.mixMoE)
        #expect(moe.moeLayers == [0, 1] && moe.expertsPerGroup == 8 && moe.topK == 2 && moe.gateScale == 8 && moe.groups == 1)
        #expect(moe.routerFeatures == .none && moe.loadBalance == .allSelected)
        // config.json round-trips the attention block
        let back = try JSONDecoder().decode(ModelConfig.self, from: JSONEncoder().encode(c))
        #expect(back.attentionMoE == c.attentionMoE)
    }

    /// With every expert selected (MLP top-8, attention top-4) and every gate at zero (uniform),
    /// each expert's weight is 1 and the model computes the base model's logits (transformers'
    /// fixture, an independent truth).
    @Test func everyExpertSelectedComputesTheBaseModel() throws {
        let base = try DecoderModel.load(directory: modelFixture("llama_untied"))
        var r = LlamaMoEv2Recipe()
        r.topK = 8
        r.attentionTopK = 4
        let m = try r.model(from: base, seed: 0)
        for e in m.store.entries where e.name.hasSuffix("_router.weight") || e.name.hasSuffix("_router.bias") || e.name.hasSuffix(".gate.weight") {
            m.store.w(m.store.id(e.name)!).update(repeating: 0, count: e.count)
        }
        let x = try ModelExpectation(modelFixture("llama_untied"))
        try m.setBatch(ids: x.ids, batch: x.batch, seq: x.seq)
        m.forward(batch: x.batch, seq: x.seq)
        expectClose(Array(UnsafeBufferPointer(start: m.logits.ptr, count: x.logits.count)), x.logits, atol: 1e-4, "every expert selected")
    }

    /// Training steps change every parameter but the MLP gates' biases, which stay bitwise 0.
    @Test func trainingChangesExactlyItsParameters() throws {
        let base = try DecoderModel.load(directory: modelFixture("llama_untied"))
        let m = try LlamaMoEv2Recipe().model(from: base, seed: 0)
        let before = Dictionary(uniqueKeysWithValues: m.store.entries.map { ($0.name, m.store.values($0.name)) })
        FreezePlan.llamaMoEv2.apply(to: m)
        let t = Trainer(model: m, schedule: CosineSchedule(peak: 1e-2, totalSteps: 3, warmupFraction: 0))
        var g = SplitMix64(seed: 9)
        for _ in 0..<3 {
            let ids = (0..<64).map { _ in Int32(g.next() % 97) }
            _ = try t.trainStep([TokenBatch(ids: ids, targets: (0..<64).map { $0 % 32 == 31 ? -1 : ids[$0 + 1] }, batch: 2, seq: 32)])
        }
        for e in m.store.entries {
            let changed = m.store.values(e.name) != before[e.name]!
            #expect(changed == !e.name.hasSuffix("_router.bias"), "\(e.name) changed=\(changed)")
        }
    }
}
