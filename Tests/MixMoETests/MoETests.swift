import Foundation
import Testing

@testable import MixMoE

/// Builds one Mix-MoE layer (layer 0) over its own store for layer-level tests.
func makeMoELayer(_ cfg: MixMoEConfig, d: Int, ff: Int, values: (String) -> [Float]?) -> (ParameterStore, MixMoELayer, MoEContext, [Float]?) {
    let store = ParameterStore()
    for g in cfg.groupNames {
        for (n, sh) in ExpertGroup.layout(prefix: "model.layers.0.mlp", group: g, cfg: cfg, d: d, intermediate: ff) { store.add(n, sh) }
    }
    store.finalize()
    for e in store.entries {
        let v = values(e.name) ?? randomFloats(e.count, seed: UInt64(store.id(e.name)!) + 100, scale: 0.3)
        store.w(store.id(e.name)!).update(from: v, count: e.count)
    }
    let T: [Float]? = cfg.routerFeatures == .random ? RouterTransform.random(d: d, seed: 5) : RouterTransform.matrix(cfg.routerFeatures, d: d)
    let ctx = MoEContext()
    let Tbuf = T.map { FloatBuffer($0) }
    let layer = MixMoELayer(
        store, layer: 0, cfg: cfg, d: d, intermediate: ff,
        transform: Tbuf.map { UnsafePointer($0.ptr) }, transformOwner: Tbuf, context: ctx)
    return (store, layer, ctx, T)
}

struct SpectralFeatureTests {
    @Test(arguments: [(RouterFeatures.fft, "fft_real"), (.dct, "dct2")])
    func matchesNumpyScipy(features: RouterFeatures, key: String) throws {
        let f = try SafetensorsFile(url: fixtures.appendingPathComponent("moe/spectral.safetensors"))
        let h = f.floats("h"), want = f.floats(key), d = 16, n = h.count / d
        let T = try #require(RouterTransform.matrix(features, d: d))
        let out = FloatBuffer(count: n * d)
        RouterTransform.apply(T, h, out.ptr, n: n, d: d)
        #expect(relativeError(out.array, want) < 1e-5, "\(features) vs numpy/scipy")
    }
}

struct MixMoELayerTests {
    /// The two-group layer against the PyTorch reference (scripts/fixtures/make_moe_fixtures.py): output,
    /// input gradient and every parameter gradient, with the load-balance term and a padding token.
    @Test(arguments: [1, 2])
    func matchesPyTorchReference(k: Int) throws {
        let fx = try SafetensorsFile(url: fixtures.appendingPathComponent("moe/layer_k\(k).safetensors"))
        let cfg = MixMoEConfig(expertsPerGroup: 4, moeLayers: [0], routerFeatures: .fft, topK: k, stage: 2, hiddenSize: 16)
        let (store, layer, ctx, _) = makeMoELayer(cfg, d: 16, ff: 32) { fx.tensors[$0] != nil ? fx.floats($0) : nil }
        let x = FloatBuffer(fx.floats("x")), mask = FloatBuffer(fx.floats("mask")), N = 10
        ctx.realMask = UnsafePointer(mask.ptr)
        ctx.lbWeight = 0.3
        layer.reserve(tokens: N)
        layer.forward(x.ptr, n: N)
        expectClose(Array(UnsafeBufferPointer(start: layer.output, count: N * 16)), fx.floats("out"), atol: 1e-4, "k=\(k) out")
        expectClose(layer.groups.map { Float($0.lbLoss) }, fx.floats("lb"), atol: 1e-5, "k=\(k) load-balance losses")
        let dx = FloatBuffer(count: N * 16)
        layer.backward(fx.floats("R"), x: x.ptr, dx: dx.ptr, n: N)
        expectClose(dx.array, fx.floats("dx"), atol: 1e-4, "k=\(k) dx")
        for e in store.entries {
            let got = Array(UnsafeBufferPointer(start: store.g(store.id(e.name)!), count: e.count))
            expectClose(got, fx.floats("grad." + e.name), atol: 1e-4, "k=\(k) grad \(e.name)")
        }
    }

    /// The folded router (W_eff = W1 + W2 T, one GEMM) against the explicit per-token `[h ; T h]`
    /// path: outputs, input gradient and every router gradient, for each feature type and k.
    @Test(arguments: RouterFeatures.allCases, [1, 2])
    func foldedRouterEqualsExplicit(features: RouterFeatures, k: Int) {
        let d = 16, ff = 32, N = 12
        let cfg = MixMoEConfig(expertsPerGroup: 4, moeLayers: [0], routerFeatures: features, topK: k, stage: 2, hiddenSize: d)
        func run(explicit: Bool) -> (out: [Float], dx: [Float], grads: [Float]) {
            let (store, layer, ctx, _) = makeMoELayer(cfg, d: d, ff: ff) { _ in nil }
            ctx.explicitRouter = explicit
            ctx.lbWeight = 0.05
            let x = FloatBuffer(randomFloats(N * d, seed: 9)), dx = FloatBuffer(count: N * d)
            layer.reserve(tokens: N)
            layer.forward(x.ptr, n: N)
            layer.backward(randomFloats(N * d, seed: 10), x: x.ptr, dx: dx.ptr, n: N)
            return (Array(UnsafeBufferPointer(start: layer.output, count: N * d)), dx.array, store.grads.array)
        }
        let a = run(explicit: false), b = run(explicit: true)
        #expect(relativeError(a.out, b.out) < 1e-5, "\(features) k=\(k) output")
        #expect(relativeError(a.dx, b.dx) < 1e-5, "\(features) k=\(k) dx")
        #expect(relativeError(a.grads, b.grads) < 1e-5, "\(features) k=\(k) parameter gradients")
    }
}

struct LoadBalanceTests {
    /// Router with features `none`, W = a * I (first n columns), tokens x = e_i: p_i(t) is known in
    /// closed form. Balanced tokens give L = 1.0; all tokens on expert i give L = n * P_i.
    @Test(arguments: [true, false])
    func closedForm(balanced: Bool) {
        let n = 4, d = 8, N = 16, a: Float = 2
        let cfg = MixMoEConfig(expertsPerGroup: n, moeLayers: [0], routerFeatures: .none, stage: 1, hiddenSize: d)
        let (_, layer, _, _) = makeMoELayer(cfg, d: d, ff: 16) { name in
            if name.hasSuffix("router.weight") { return (0..<(n * d)).map { $0 / d == $0 % d ? a : 0 } }
            if name.hasSuffix("router.bias") { return [Float](repeating: 0, count: n) }
            return nil
        }
        let x = FloatBuffer(count: N * d)
        for t in 0..<N { x[t * d + (balanced ? t % n : 2)] = 1 }
        layer.reserve(tokens: N)
        layer.forward(x.ptr, n: N)
        let pSel = Double(exp(a) / (exp(a) + Float(n - 1)))
        let want = balanced ? 1.0 : Double(n) * pSel
        #expect(abs(layer.lbLoss - want) < 1e-5, "L_LB \(layer.lbLoss) vs closed form \(want)")
    }
}

struct UpcyclingTests {
    /// The fixture upcycled in memory, or (`fromFiles`) streamed from its directory tensor by tensor
    /// as `mixmoe upcycle` does.
    func upcycled(experts: Int = 4, fromFiles: Bool = false, allExperts: Bool = false) throws -> (DecoderModel, DecoderModel) {
        let dense = try DecoderModel.load(directory: modelFixture("llama_untied"))
        var cfg = MixMoEConfig(expertsPerGroup: experts, moeLayers: [0, 1], routerFeatures: .fft, hiddenSize: dense.config.hiddenSize)
        if allExperts { cfg = allExpertsAtUnitWeight(cfg) }
        let moe = try fromFiles ? Upcycling.upcycle(directory: modelFixture("llama_untied")) { _ in cfg } : Upcycling.upcycle(dense, cfg)
        if allExperts { zeroRouters(moe) }
        return (dense, moe)
    }

    /// Sum of the n slices (all experts at weight 1) equals the dense FFN output.
    @Test(arguments: [false, true]) func slicesSumToDenseFFN(fromFiles: Bool) throws {
        let (dense, moe) = try upcycled(fromFiles: fromFiles, allExperts: true)
        let d = dense.config.hiddenSize, N = 6
        let x = FloatBuffer(randomFloats(N * d, seed: 3))
        for l in 0..<2 {
            dense.blocks[l].ffn.reserve(tokens: N); dense.blocks[l].ffn.forward(x.ptr, n: N)
            moe.blocks[l].ffn.reserve(tokens: N); moe.blocks[l].ffn.forward(x.ptr, n: N)
            expectClose(
                Array(UnsafeBufferPointer(start: moe.blocks[l].ffn.output, count: N * d)),
                Array(UnsafeBufferPointer(start: dense.blocks[l].ffn.output, count: N * d)), atol: 1e-5, "layer \(l)")
        }
    }

    /// With every expert forced on at weight 1 the upcycled model gives transformers' dense logits.
    @Test(arguments: [false, true]) func forcedExpertsGiveDenseLogits(fromFiles: Bool) throws {
        let (_, moe) = try upcycled(fromFiles: fromFiles, allExperts: true)
        let e = try ModelExpectation(modelFixture("llama_untied"))
        try moe.setBatch(ids: e.ids, batch: e.batch, seq: e.seq)
        moe.forward(batch: e.batch, seq: e.seq)
        expectClose(Array(UnsafeBufferPointer(start: moe.logits.ptr, count: e.logits.count)), e.logits, atol: 1e-4, "logits")
    }

    @Test func indivisibleFFNIsAClearError() throws {
        let dense = try DecoderModel.load(directory: modelFixture("llama_untied"))  // d_ff = 64
        let cfg = MixMoEConfig(expertsPerGroup: 6, moeLayers: [1], hiddenSize: 32)
        #expect(throws: ModelError.self) { try Upcycling.upcycle(dense, cfg) }
        do { _ = try Upcycling.upcycle(dense, cfg) } catch {
            #expect(error.localizedDescription.contains("experts_per_group"))
            #expect(error.localizedDescription.contains("64"))
        }
    }

    @Test(arguments: [
        ("uniform", [3, 7, 11, 15]), ("bottom", [0, 1, 2, 3]), ("top", [12, 13, 14, 15]),
        ("dense-bottom", [1, 3, 5, 7]), ("2, 9", [2, 9]),
    ])
    func placements(strategy: String, want: [Int]) throws {
        #expect(try #require(Placement(strategy)).layers(of: 16, every: 4) == want)
    }
}

/// The freeze matrix (docs/DESIGN.md, *Training*) on a real training run, and the stage-2 start identity.
struct TwoStageTests {
    func batch(seed: UInt64) -> TokenBatch {
        var g = SplitMix64(seed: seed)
        let ids = (0..<64).map { _ in Int32(g.next() % 97) }
        let tgt = (0..<64).map { i in i % 32 == 31 ? Int32(-1) : ids[i + 1] }
        return TokenBatch(ids: ids, targets: tgt, batch: 2, seq: 32)
    }

    func snapshot(_ m: DecoderModel) -> [String: [Float]] {
        Dictionary(uniqueKeysWithValues: m.store.entries.map { ($0.name, m.store.values($0.name)) })
    }

    func checkStage(_ m: DecoderModel, before: [String: [Float]], plan: FreezePlan, steps: Int, seed: UInt64) throws {
        plan.apply(to: m)
        let tr = Trainer(model: m, schedule: CosineSchedule(peak: 1e-2, totalSteps: steps, warmupFraction: 0))
        for s in 0..<steps { try tr.trainStep([batch(seed: seed + UInt64(s))]) }
        for e in m.store.entries {
            let now = m.store.values(e.name)
            if plan.isTrainable(e.name, m.config) {
                #expect(now != before[e.name]!, "\(plan) trainable \(e.name) did not change")
            } else {
                #expect(now == before[e.name]!, "\(plan) frozen \(e.name) changed")
            }
        }
    }

    /// `fromFiles`: stage 2 starts from the saved stage-1 model, read tensor by tensor
    /// (`Upcycling.prepare(directory:)`, what `mixmoe train --stage 2` does).
    @Test(arguments: [false, true]) func stagesFreezeExactlyAndStage2StartsWhereStage1Ended(fromFiles: Bool) throws {
        let dense = try DecoderModel.load(directory: modelFixture("llama_untied"))
        let m1 = try Upcycling.upcycle(dense, MixMoEConfig(expertsPerGroup: 2, moeLayers: [0, 1], hiddenSize: 32))
        try checkStage(m1, before: snapshot(m1), plan: .stage1, steps: 4, seed: 1)

        let probe = batch(seed: 99)
        try m1.setBatch(ids: probe.ids, batch: 2, seq: 32); m1.forward(batch: 2, seq: 32)
        let logits1 = m1.logits.array
        var s2 = try Upcycling.beginStage2(m1)
        if fromFiles {
            let dir = tempDir("stage1")
            defer { try? FileManager.default.removeItem(at: dir) }
            try m1.save(directory: dir)
            s2 = try Upcycling.prepare(directory: dir, stage: 2, name: dir.path)
            // the MT group (2 layers x 2 experts x 3 matrices of 32 x 32, router 2 x 64 + 2): all and only it trains
            #expect(s2.store.trainableCount == 2 * (2 * 3 * 32 * 32 + 2 * 64 + 2))
        }
        try s2.setBatch(ids: probe.ids, batch: 2, seq: 32); s2.forward(batch: 2, seq: 32)
        expectClose(s2.logits.array, logits1, atol: 1e-6, "stage-2 step-0 logits vs stage-1 logits (combine mean)")
        try checkStage(s2, before: snapshot(s2), plan: .stage2, steps: 4, seed: 50)
    }
}

/// Copy upcycling (an extension beyond the paper): every expert a full copy of the FFN, the
/// selected experts' weights renormalised to sum to one.
struct CopyUpcyclingTests {
    /// Whatever the (random) routers pick, the copy-upcycled model computes transformers' dense
    /// logits at initialisation, in stage 1 and after the stage-2 copy, for top-1 and top-2.
    @Test(arguments: [1, 2])
    func startsAsTheDenseModel(k: Int) throws {
        let dense = try DecoderModel.load(directory: modelFixture("llama_untied"))
        let cfg = MixMoEConfig(expertsPerGroup: 4, moeLayers: [0, 1], routerFeatures: .fft, topK: k, hiddenSize: 32, upcycle: .copy)
        let m1 = try Upcycling.upcycle(dense, cfg)
        let e = try ModelExpectation(modelFixture("llama_untied"))
        for m in [m1, try Upcycling.beginStage2(m1)] {
            try m.setBatch(ids: e.ids, batch: e.batch, seq: e.seq)
            m.forward(batch: e.batch, seq: e.seq)
            expectClose(
                Array(UnsafeBufferPointer(start: m.logits.ptr, count: e.logits.count)), e.logits, atol: 1e-4,
                "k=\(k) stage \(m.config.mixMoE!.stage)")
        }
    }

    /// The renormalised gate's router gradient against central finite differences of
    /// `L = sum(out * R)` (top-2, where the renormalised weights depend on the router).
    @Test func renormalisedRouterGradientMatchesFiniteDifferences() {
        let d = 8, ff = 12, N = 10
        let cfg = MixMoEConfig(expertsPerGroup: 3, moeLayers: [0], routerFeatures: .fft, topK: 2, stage: 1, hiddenSize: d, upcycle: .copy)
        let (store, layer, ctx, _) = makeMoELayer(cfg, d: d, ff: ff) { _ in nil }
        ctx.lbWeight = 0
        let x = FloatBuffer(randomFloats(N * d, seed: 21)), R = randomFloats(N * d, seed: 22)
        func loss() -> Double {
            layer.reserve(tokens: N)
            layer.forward(x.ptr, n: N)
            return (0..<(N * d)).reduce(0.0) { $0 + Double(layer.output[$1]) * Double(R[$1]) }
        }
        _ = loss()
        store.zeroGrads()
        layer.backward(R, x: x.ptr, dx: nil, n: N)
        let id = store.id("model.layers.0.mlp.lm_router.weight")!
        let w = store.w(id), g = store.g(id)
        for i in stride(from: 0, to: 3 * 2 * d, by: 5) {
            let v = w[i], eps: Float = 1e-2
            w[i] = v + eps; let lp = loss()
            w[i] = v - eps; let lm = loss()
            w[i] = v
            let fd = (lp - lm) / Double(2 * eps)
            #expect(abs(fd - Double(g[i])) < 2e-3 + 2e-2 * abs(fd), "router weight \(i): fd \(fd) vs \(g[i])")
        }
    }
}
