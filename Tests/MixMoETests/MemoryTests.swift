import Foundation
import Testing

@testable import MixMoE

/// Memory at scale (docs/PERFORMANCE.md, "1B scale"): what is resident, what is planned, and the
/// streaming paths that avoid second copies. Truths: the kernel's resident-set counter, published
/// parameter counts, closed forms and exact identities.
struct MemoryTests {
    /// The kernel's count of this process's resident bytes.
    func resident() -> Int { MemoryPlan.residentBytes() }

    /// A large buffer costs resident memory only where it is written (gradients of frozen views
    /// are never written). 256 MB, so that other tests running meanwhile cannot blur the result.
    @Test func largeBuffersBecomeResidentOnlyWhereWritten() {
        let n = 64 << 20  // floats
        let r0 = resident()
        let b = FloatBuffer(count: n)
        let r1 = resident()
        #expect(r1 - r0 < 64 << 20, "an untouched 256 MB buffer added \(r1 - r0) resident bytes")
        #expect(b[n - 1] == 0 && b[0] == 0)  // zero-filled, as FloatBuffer promises
        (b.ptr).update(repeating: 1, count: n / 2)
        let r2 = resident()
        #expect(r2 - r1 > 100 << 20, "writing 128 MB added only \(r2 - r1) resident bytes")
        withExtendedLifetime(b) {}
    }

    /// The named configurations have the parameter counts transformers reports for the published
    /// models (LlamaForCausalLM / Qwen2ForCausalLM of their config.json, tied embeddings).
    @Test(arguments: [("llama-3.2-1b", 1_235_814_400), ("qwen2.5-0.5b", 494_032_768)])
    func namedConfigsHaveThePublishedSize(name: String, parameters: Int) throws {
        let c = try #require(ModelConfig.named(name))
        #expect(DecoderModel.fullLayout(c).reduce(0) { $0 + $1.1.reduce(1, *) } == parameters)
    }

    /// The plan of a stage-2 run: parameters, trainable parameters and the bytes that follow from
    /// them in closed form; activations of a micro-batch at least the logits and residual stream.
    @Test func stage2PlanFollowsTheParameterCounts() throws {
        var c = ModelConfig.tiny  // V 4096, d 128, ff 352, 4 layers, 4 heads / 2 KV, tied
        c.mixMoE = MixMoEConfig(expertsPerGroup: 4, moeLayers: [1, 3], stage: 2, hiddenSize: 128)
        let plan = MemoryPlan.training(config: c, freeze: .stage2, microTokens: 512, seq: 128, process: 0)
        let s = 352 / 4
        let mtGroup = 4 * 3 * 128 * s + (4 * 256 + 4)  // experts + router over [h ; Re(FFT(h))]
        #expect(plan.trainable == 2 * mtGroup)
        // parameters in closed form: tied embedding 4096 x 128; per layer q and o 128 x 128, k and
        // v 64 x 128, two norms; dense FFNs (layers 0, 2) 3 x 128 x 352; MoE layers (1, 3) two
        // groups of 4 experts of 3 x 128 x 88 and their routers; the final norm
        let attention = 2 * 128 * 128 + 2 * 64 * 128 + 2 * 128
        let parameters = 4096 * 128 + 4 * attention + 2 * (3 * 128 * 352) + 2 * (2 * mtGroup) + 128
        #expect(plan.parameters == parameters)
        let bytes = Dictionary(uniqueKeysWithValues: plan.items.map { ($0.name, $0.bytes) })
        #expect(bytes["weights"] == 4 * parameters)
        #expect(bytes["gradients"] == 4 * 2 * mtGroup)
        #expect(bytes["optimizer"] == 8 * 2 * mtGroup)
        let logitsAndStream = 4 * 512 * 4096 + 4 * 512 * 128 * 5
        #expect(bytes["activations"]! > logitsAndStream)
        #expect(plan.total == bytes.values.reduce(0, +))
    }

    /// Decoding holds the weights, a KV cache of layers x 2 x batch x positions x KV width, and at
    /// most the prefill's reserved activations (at least its logits).
    @Test func decodingPlanCountsWeightsAndTheKVCache() {
        let c = ModelConfig.tiny  // 4 layers, 2 KV heads of 32
        let plan = MemoryPlan.decoding(config: c, batch: 8, promptTokens: 40, newTokens: 23, process: 0)
        let bytes = Dictionary(uniqueKeysWithValues: plan.items.map { ($0.name, $0.bytes) })
        #expect(bytes["kv cache"] == 4 * 2 * 8 * (40 + 23 + 1) * (2 * 32) * 4)
        #expect(bytes["weights"] == 4 * DecoderModel.fullLayout(c).reduce(0) { $0 + $1.1.reduce(1, *) })
        #expect(bytes["activations"]! >= 4 * 8 * 40 * 4096)
    }

    /// ZeRO-1 over 4 ranks keeps a quarter of the moments (plus its reduce-scatter part).
    @Test func zero1PlanShardsTheMoments() throws {
        let plan = MemoryPlan.training(config: .tiny, freeze: .full, microTokens: 256, seq: 128, ranks: 4, zero1: true, process: 0)
        let bytes = Dictionary(uniqueKeysWithValues: plan.items.map { ($0.name, $0.bytes) })
        let shard = (plan.trainable + 3) / 4
        #expect(bytes["optimizer"] == 8 * shard)
        #expect(bytes["collectives"] == 4 * (plan.trainable + shard))
    }

    /// A plan above the available memory is refused with the numbers and what to change.
    @Test func aPlanThatDoesNotFitIsRefused() throws {
        let plan = MemoryPlan.training(config: .tiny, freeze: .full, microTokens: 256, seq: 128, process: 0)
        #expect(throws: MemoryPlanError.self) { try plan.check(available: plan.total - 1, hint: "lower --micro-tokens") }
        do { try plan.check(available: plan.total - 1, hint: "lower --micro-tokens") } catch {
            #expect(error.localizedDescription.contains("--micro-tokens"))
            #expect(error.localizedDescription.contains("activations"))
        }
        try plan.check(available: plan.total, hint: "")  // fits exactly
    }

    /// The streaming writer produces the very bytes of the in-memory serialiser (which the
    /// safetensors fixtures check), and the chunked reader gives them back.
    @Test func streamedSafetensorsEqualTheSerialisedBytes() throws {
        let a = FloatBuffer(randomFloats(3000, seed: 1)), b = FloatBuffer(randomFloats(70, seed: 2))
        let tensors = [(name: "a", shape: [30, 100], values: UnsafePointer(a.ptr)), (name: "b", shape: [70], values: UnsafePointer(b.ptr))]
        let dir = tempDir("st")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("x.safetensors")
        try SafetensorsFile.write(url, tensors: tensors, metadata: ["format": "pt"])
        #expect(try Data(contentsOf: url) == SafetensorsFile.serialize(tensors, metadata: ["format": "pt"]))
        let f = try SafetensorsFile(url: url)
        #expect(f.floats("a") == a.array && f.floats("b") == b.array)
        withExtendedLifetime((a, b)) {}
    }

    /// Evaluating a batch in pieces (expert-use probes after training) gives the whole batch's
    /// token-mean loss: the same per-token losses, summed in another grouping.
    @Test func splitBatchesEvaluateLikeTheWhole() throws {
        let m = try DecoderModel.load(directory: modelFixture("llama_untied"))
        var g = SplitMix64(seed: 5)
        let ids = (0..<(5 * 16)).map { _ in Int32(g.next() % 97) }
        var tgt = [Int32](repeating: -1, count: 5 * 16)
        for i in 0..<(5 * 16) where i % 16 != 15 && i % 7 != 3 { tgt[i] = ids[i + 1] }
        let whole = TokenBatch(ids: ids, targets: tgt, batch: 5, seq: 16)
        let parts = whole.split(maxTokens: 32)
        #expect(parts.map { $0.batch } == [2, 2, 1])
        let t = Trainer(model: m, schedule: CosineSchedule(peak: 1e-3, totalSteps: 1, warmupFraction: 0))
        let (l1, n1) = try t.evaluate([whole])
        let (l2, n2) = try t.evaluate(parts)
        #expect(n1 == n2 && n1 == whole.validTokens)
        #expect(Swift.abs(l1 - l2) <= 1e-6 * Swift.abs(l1))
    }

    /// Above the shard size the weights go to transformers' sharded layout (index with total_size
    /// and a weight map), which loads back to the same weights; a small save removes the shards.
    @Test func largeModelsAreSavedInShards() throws {
        let m = try DecoderModel.load(directory: modelFixture("llama_untied"))
        let dir = tempDir("shards")
        defer { try? FileManager.default.removeItem(at: dir) }
        try m.save(directory: dir, maxShardBytes: 4 * m.store.count / 3)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        #expect(files.contains("model.safetensors.index.json") && !files.contains("model.safetensors"))
        let shards = files.filter { $0.hasPrefix("model-0") }
        #expect(shards.count >= 3 && shards.allSatisfy { $0.hasSuffix("-of-0000\(shards.count).safetensors") })
        let index = try #require(
            JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("model.safetensors.index.json"))) as? [String: Any])
        #expect((index["metadata"] as? [String: Any])?["total_size"] as? Int == 4 * m.store.count)
        #expect((index["weight_map"] as? [String: String])?.count == m.store.entries.count)
        #expect(try DecoderModel.load(directory: dir).store.params.array == m.store.params.array)
        try m.save(directory: dir)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["config.json", "model.safetensors"])
    }
}
