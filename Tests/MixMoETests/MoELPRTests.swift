import Foundation
import Testing

@testable import MixMoE

/// The MoE-LPR baseline (Zhou et al. 2024): its layer against a PyTorch reference written after
/// the reference code, its language-prior routing loss against a closed form and finite
/// differences, its stages' freeze plans, and its starting point (the base model's function).
struct MoELPRTests {
    /// The layer's config as the reference runs it, at the fixture's size.
    static let layerConfig = MixMoEConfig(
        expertsPerGroup: 4, moeLayers: [0], routerFeatures: .none, topK: 2, stage: 1, hiddenSize: 16, groups: 1, upcycle: .copy,
        loadBalance: .allSelected)

    /// Output, load-balance and LPR losses, input gradient and every trained parameter's gradient
    /// (scripts/fixtures/make_moe_lpr_fixture.py): top-2 renormalised, Mixtral's load balance with a padding
    /// token, LPR over five marked tokens.
    @Test func layerMatchesPyTorchReference() throws {
        let fx = try SafetensorsFile(url: fixtures.appendingPathComponent("moe/moe_lpr_layer.safetensors"))
        let (store, layer, ctx, _) = makeMoELayer(Self.layerConfig, d: 16, ff: 32) { fx.tensors[$0] != nil ? fx.floats($0) : nil }
        store.setTrainable { !$0.hasSuffix("_router.bias") }  // MoE-LPR's router has no bias
        let x = FloatBuffer(fx.floats("x")), mask = FloatBuffer(fx.floats("mask")), lpr = FloatBuffer(fx.floats("lpr_mask"))
        let N = 12, w = fx.floats("weights")
        ctx.realMask = UnsafePointer(mask.ptr)
        ctx.lprMask = UnsafePointer(lpr.ptr)
        ctx.lbWeight = w[0]
        ctx.lprWeight = w[1]
        layer.reserve(tokens: N)
        layer.forward(x.ptr, n: N)
        expectClose(Array(UnsafeBufferPointer(start: layer.output, count: N * 16)), fx.floats("out"), atol: 1e-4, "out")
        expectClose([Float(layer.lbLoss)], fx.floats("lb"), atol: 1e-5, "Mixtral load balance")
        expectClose([Float(layer.lprLoss)], fx.floats("lpr"), atol: 1e-5, "LPR loss")
        let dx = FloatBuffer(count: N * 16)
        layer.backward(fx.floats("R"), x: x.ptr, dx: dx.ptr, n: N)
        expectClose(dx.array, fx.floats("dx"), atol: 1e-4, "dx")
        for e in store.entries where !e.name.hasSuffix("_router.bias") {
            let got = Array(UnsafeBufferPointer(start: store.g(store.id(e.name)!), count: e.count))
            expectClose(got, fx.floats("grad." + e.name), atol: 1e-4, "grad \(e.name)")
        }
    }

    /// Router weights 0 and bias b: every token's probabilities are softmax(b), so the LPR loss is
    /// `log sum_i exp(p_i) - p_0` with p = softmax(b) (the reference's cross-entropy over
    /// probabilities); its gradient with respect to b against central finite differences.
    @Test(arguments: [[0.0, 0.0, 0.0, 0.0], [1.5, -0.5, 0.25, 2.0], [-3.0, 1.0, 0.0, 0.5]])
    func lprLossClosedFormAndFiniteDifferences(bias: [Double]) throws {
        let N = 6
        let (store, layer, ctx, _) = makeMoELayer(Self.layerConfig, d: 16, ff: 32) { name in
            name.hasSuffix("_router.weight") ? [Float](repeating: 0, count: 4 * 16) : nil
        }
        let biasID = try #require(store.id("model.layers.0.mlp.lm_router.bias"))
        let lpr = FloatBuffer([1, 0, 1, 1, 0, 1]), x = FloatBuffer(randomFloats(N * 16, seed: 3))
        ctx.lprMask = UnsafePointer(lpr.ptr)
        ctx.lprWeight = 1
        func loss(_ b: [Double]) -> Double {
            for i in 0..<4 { store.w(biasID)[i] = Float(b[i]) }
            layer.reserve(tokens: N)
            layer.forward(x.ptr, n: N)
            return layer.lprLoss
        }
        let e = bias.map { exp($0) }, z = e.reduce(0, +), p = e.map { $0 / z }
        let closed = log(p.map { exp($0) }.reduce(0, +)) - p[0]
        #expect(abs(loss(bias) - closed) < 1e-6, "LPR \(loss(bias)) vs closed form \(closed)")
        // analytic gradient: the backward with a zero output gradient and no load balance
        store.setTrainable { $0.hasSuffix("_router.bias") }
        store.zeroGrads()
        _ = loss(bias)
        layer.backward([Float](repeating: 0, count: N * 16), x: x.ptr, dx: nil, n: N)
        let analytic = Array(UnsafeBufferPointer(start: store.g(biasID), count: 4))
        for i in 0..<4 {
            var up = bias, down = bias
            up[i] += 1e-3; down[i] -= 1e-3
            let fd = (loss(up) - loss(down)) / 2e-3
            #expect(abs(Double(analytic[i]) - fd) < 1e-4, "dL/db[\(i)]: \(analytic[i]) vs finite difference \(fd)")
        }
    }

    /// The recipe's model for the 2-layer fixture (every 1: both layers MoE, 4 experts).
    func upcycled() throws -> (DecoderModel, MixMoEConfig) {
        var r = MoELPRRecipe()
        r.experts = 4
        let base = try DecoderModel.load(directory: modelFixture("llama_untied"))
        let c = try r.config(for: base.config, every: 1)
        return (try Upcycling.upcycle(base, c), c)
    }

    /// MoE-LPR's recipe: copy upcycling, plain router initialised Xavier-normal, top-2, Mixtral's balance.
    @Test func recipeConfig() throws {
        let (_, c) = try upcycled()
        #expect(c.upcycle == .copy && c.routerFeatures == .none && c.topK == 2 && c.loadBalance == .allSelected && c.groups == 1)
        #expect(c.moeLayers == [0, 1] && c.expertsPerGroup == 4 && c.lbCoef == 0.01)
        #expect(abs(c.routerInitStd - (2.0 / 36).squareRoot()) < 1e-12)
        // the config.json block round-trips with its new fields
        var c2 = c
        c2.lprCoef = 0.1
        let back = try JSONDecoder().decode(MixMoEConfig.self, from: JSONEncoder().encode(c2))
        #expect(back == c2)
    }

    /// Every expert is a copy of the FFN and the selected weights sum to one, so the upcycled model
    /// computes the base model's logits (transformers' fixture) with its routers as they are.
    @Test func upcycledModelComputesTheBaseModel() throws {
        let (m, _) = try upcycled()
        let e = try ModelExpectation(modelFixture("llama_untied"))
        try m.setBatch(ids: e.ids, batch: e.batch, seq: e.seq)
        m.forward(batch: e.batch, seq: e.seq)
        expectClose(Array(UnsafeBufferPointer(start: m.logits.ptr, count: e.logits.count)), e.logits, atol: 1e-4, "MoE-LPR at init")
    }

    func batch(_ seed: UInt64, lpr: Bool) -> TokenBatch {
        var g = SplitMix64(seed: seed)
        let ids = (0..<64).map { _ in Int32(g.next() % 97) }
        return TokenBatch(
            ids: ids, targets: (0..<64).map { $0 % 32 == 31 ? -1 : ids[$0 + 1] },
            lprMask: lpr ? (0..<64).map { $0 < 32 ? 1 : 0 } : nil, batch: 2, seq: 32)
    }

    /// Stage 1 trains the new experts and the router weights; expert 0 (the original FFN), the
    /// router bias and everything dense stay bitwise frozen. Stage 2 (LPR on) trains the router
    /// weights alone.
    @Test(arguments: [FreezePlan.moeLPRExperts, .routers])
    func stagesTrainExactlyTheirParameters(plan: FreezePlan) throws {
        let (m0, _) = try upcycled()
        var c = m0.config
        if plan == .routers { c.mixMoE!.lbCoef = 0; c.mixMoE!.lprCoef = 0.1 }
        let m = DecoderModel(config: c, store: m0.store)
        let before = Dictionary(uniqueKeysWithValues: m.store.entries.map { ($0.name, m.store.values($0.name)) })
        plan.apply(to: m)
        let t = Trainer(model: m, schedule: CosineSchedule(peak: 1e-2, totalSteps: 3, warmupFraction: 0))
        for s in 0..<3 {
            let st = try t.trainStep([batch(UInt64(s), lpr: plan == .routers)])
            if plan == .routers { #expect(st.auxLoss > 0, "the LPR loss is part of the step's auxiliary loss") }
        }
        for e in m.store.entries {
            let changed = m.store.values(e.name) != before[e.name]!
            let should =
                plan == .routers
                ? e.name.hasSuffix("_router.weight")
                : e.name.hasSuffix("_router.weight") || (e.name.contains("_experts.") && !e.name.contains("_experts.0."))
            #expect(changed == should, "\(plan.rawValue): \(e.name) changed=\(changed)")
        }
    }

    /// Monolingual files split by language for the two stages' data.
    @Test(arguments: [("mono/en.txt", "en"), ("runs/x/mono.zh.txt", "zh"), ("de.txt", "de")])
    func languageOfMonolingualFile(path: String, language: String) {
        #expect(MethodRunner.language(of: URL(fileURLWithPath: path)) == language)
    }
}
