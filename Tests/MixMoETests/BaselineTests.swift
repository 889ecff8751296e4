import Foundation
import Testing

@testable import MixMoE

/// The paper's baselines on a tiny model: each freeze plan trains exactly the parameters it should,
/// and every transformation starts from the base model's function.
struct BaselineTests {
    enum Kind: String, CaseIterable { case sft, ptSft = "pt-sft", lora, llamaPro = "llama-pro", moe, moePtSft = "moe-pt-sft" }

    func base() throws -> DecoderModel { try DecoderModel.load(directory: modelFixture("llama_untied")) }

    /// The model a baseline trains, its plan(s), and the names that must be trainable.
    func setup(_ k: Kind, allExperts: Bool = false) throws -> (DecoderModel, [FreezePlan], (String) -> Bool) {
        let b = try base()
        switch k {
        case .sft: return (b, [.full], { _ in true })
        case .ptSft: return (b, [.full, .full], { _ in true })
        case .lora: return (try Baselines.addLoRA(b), [.lora], { $0.contains(".lora_") })
        case .llamaPro:
            let m = try Baselines.expandLlamaPro(b, every: 1)  // 2 layers -> 4, new ones at 1 and 3
            #expect(m.config.expandedLayers == [1, 3])
            return (m, [.llamaPro], { $0.hasPrefix("model.layers.1.") || $0.hasPrefix("model.layers.3.") })
        case .moe, .moePtSft:
            let c = MixMoEConfig(expertsPerGroup: 2, moeLayers: [0, 1], hiddenSize: 32, groups: 1)
            let m = try Upcycling.upcycle(b, allExperts ? allExpertsAtUnitWeight(c) : c)
            if allExperts { zeroRouters(m) }
            return (m, k == .moe ? [.moe] : [.moe, .moe], { $0.contains("_experts.") || $0.contains("_router.") })
        }
    }

    func batch(_ seed: UInt64) -> TokenBatch {
        var g = SplitMix64(seed: seed)
        let ids = (0..<64).map { _ in Int32(g.next() % 97) }
        return TokenBatch(ids: ids, targets: (0..<64).map { $0 % 32 == 31 ? -1 : ids[$0 + 1] }, batch: 2, seq: 32)
    }

    @Test(arguments: Kind.allCases)
    func freezePlanTrainsExactlyItsParameters(_ k: Kind) throws {
        let (m, plans, shouldTrain) = try setup(k)
        let before = Dictionary(uniqueKeysWithValues: m.store.entries.map { ($0.name, m.store.values($0.name)) })
        for (stage, plan) in plans.enumerated() {
            plan.apply(to: m)
            let t = Trainer(model: m, schedule: CosineSchedule(peak: 1e-2, totalSteps: 3, warmupFraction: 0))
            for s in 0..<3 { try t.trainStep([batch(UInt64(10 * stage + s))]) }
        }
        for e in m.store.entries {
            let changed = m.store.values(e.name) != before[e.name]!
            #expect(changed == shouldTrain(e.name), "\(k.rawValue): \(e.name) changed=\(changed)")
        }
    }

    /// LoRA (B = 0), LLaMA-Pro (zeroed o_proj/down_proj) and one-group upcycling with all experts
    /// at weight 1 compute transformers' logits of the base model.
    @Test(arguments: [Kind.lora, .llamaPro, .moe])
    func transformationStartsAtTheBaseModel(_ k: Kind) throws {
        let (m, _, _) = try setup(k, allExperts: true)
        let e = try ModelExpectation(modelFixture("llama_untied"))
        try m.setBatch(ids: e.ids, batch: e.batch, seq: e.seq)
        m.forward(batch: e.batch, seq: e.seq)
        expectClose(Array(UnsafeBufferPointer(start: m.logits.ptr, count: e.logits.count)), e.logits, atol: 1e-4, k.rawValue)
    }

    /// LoRA backward against finite differences, with non-zero B.
    @Test func loraBackwardMatchesFiniteDifferences() throws {
        let m = try Baselines.addLoRA(try base())
        for e in m.store.entries where e.name.hasSuffix("lora_B.weight") {
            let w = m.store.w(m.store.id(e.name)!)
            let r = randomFloats(e.count, seed: UInt64(e.count), scale: 0.1)
            for i in 0..<e.count { w[i] = r[i] }
        }
        FreezePlan.lora.apply(to: m)
        let b = batch(5)
        func loss() throws -> Double {
            try m.setBatch(ids: b.ids, targets: b.targets, batch: 2, seq: 32)
            m.forward(batch: 2, seq: 32)
            return m.loss(batch: 2, seq: 32).sum
        }
        _ = try loss()
        m.store.zeroGrads()
        m.backward(batch: 2, seq: 32, lossScale: 1)
        for name in ["model.layers.0.self_attn.q_proj.lora_A.weight", "model.layers.1.mlp.down_proj.lora_B.weight"] {
            let id = m.store.id(name)!, w = m.store.w(id), g = m.store.g(id)
            var num: [Float] = [], ana: [Float] = []
            for i in stride(from: 0, to: m.store.entries[id].count, by: 7) {
                let v = w[i]
                w[i] = v + 1e-2; let lp = try loss()
                w[i] = v - 1e-2; let lm = try loss()
                w[i] = v
                num.append(Float((lp - lm) / 2e-2)); ana.append(g[i])
            }
            #expect(relativeError(ana, num) < 2e-2, "\(name): \(relativeError(ana, num))")
        }
    }

    /// A LoRA model saved by mixmoe reloads strictly (adapters included) with the same logits.
    @Test func loraModelRoundTrips() throws {
        let m = try Baselines.addLoRA(try base())
        for e in m.store.entries where e.name.hasSuffix("lora_B.weight") {
            let w = m.store.w(m.store.id(e.name)!)
            for i in 0..<e.count { w[i] = 0.05 }
        }
        let dir = tempDir("lora")
        try m.save(directory: dir)
        let r = try DecoderModel.load(directory: dir)
        let ids: [Int32] = [1, 5, 9, 33, 70]
        try m.setBatch(ids: ids, batch: 1, seq: 5); m.forward(batch: 1, seq: 5)
        try r.setBatch(ids: ids, batch: 1, seq: 5); r.forward(batch: 1, seq: 5)
        expectClose(
            Array(UnsafeBufferPointer(start: r.logits.ptr, count: 5 * 97)),
            Array(UnsafeBufferPointer(start: m.logits.ptr, count: 5 * 97)), atol: 1e-6, "reloaded LoRA model")
    }
}
