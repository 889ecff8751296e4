import Foundation
import Testing

@testable import MixMoE

/// Loading is strict and every failure names the file and the field or tensor.
struct ModelIOTests {
    /// A copy of a fixture model directory to break.
    func copyOfFixture() throws -> URL {
        let dst = tempDir("io")
        for f in ["config.json", "model.safetensors"] {
            try FileManager.default.copyItem(
                at: modelFixture("llama_untied").appendingPathComponent(f),
                to: dst.appendingPathComponent(f))
        }
        return dst
    }

    func editConfig(_ dir: URL, _ edit: (inout [String: Any]) -> Void) throws {
        let url = dir.appendingPathComponent("config.json")
        var obj = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        edit(&obj)
        try JSONSerialization.data(withJSONObject: obj).write(to: url)
    }

    func loadError(_ dir: URL) -> ModelError? {
        do { _ = try DecoderModel.load(directory: dir); return nil } catch { return error as? ModelError }
    }

    @Test func missingDirectory() {
        let e = loadError(URL(fileURLWithPath: "/nonexistent/model"))
        #expect(e == .missingDirectory("/nonexistent/model"))
        #expect(e?.errorDescription?.contains("/nonexistent/model") == true)
    }

    /// (key, new value as a JSON fragment or nil to delete, field the error must name)
    @Test(
        arguments: [
            ("hidden_size", nil, "hidden_size"),  // missing key
            ("num_hidden_layers", #""two""#, "num_hidden_layers"),  // wrong type
            ("num_key_value_heads", "3", "num_key_value_heads"),  // inconsistent value
            ("hidden_act", #""gelu""#, "hidden_act"),
        ] as [(String, String?, String)])
    func badConfigNamesField(key: String, value: String?, field: String) throws {
        let dir = try copyOfFixture()
        let v = try value.map { try JSONSerialization.jsonObject(with: Data($0.utf8), options: .fragmentsAllowed) }
        try editConfig(dir) { $0[key] = v }
        let e = try #require(loadError(dir))
        guard case .config(let file, let f, _) = e else { Issue.record("unexpected \(e)"); return }
        #expect(file.hasSuffix("config.json"))
        #expect(f == field)
    }

    @Test func truncatedSafetensors() throws {
        let dir = try copyOfFixture()
        let url = dir.appendingPathComponent("model.safetensors")
        let d = try Data(contentsOf: url)
        try d.prefix(d.count - 100).write(to: url)
        let e = try #require(loadError(dir))
        guard case .safetensors(let file, let detail) = e else { Issue.record("unexpected \(e)"); return }
        #expect(file == url.path)
        #expect(detail.contains("truncated"))
    }

    @Test func wrongShapeNamesTensor() throws {
        let dir = try copyOfFixture()
        try editConfig(dir) { $0["intermediate_size"] = 48 }
        let e = try #require(loadError(dir))
        guard case .tensorShape(_, let name, let expected, let got) = e else { Issue.record("unexpected \(e)"); return }
        #expect(name.contains("mlp"))
        #expect(expected != got)
    }

    @Test func unknownAndMissingTensors() throws {
        let dir = try copyOfFixture()
        try editConfig(dir) { $0["num_hidden_layers"] = 1 }  // file has layer 1 too: unknown tensor
        guard case .unknownTensor(_, let n)? = loadError(dir) else { Issue.record("expected unknownTensor"); return }
        #expect(n.hasPrefix("model.layers.1."))
        try editConfig(dir) { $0["num_hidden_layers"] = 3 }  // layer 2 absent: missing tensor
        guard case .missingTensor(_, let m)? = loadError(dir) else { Issue.record("expected missingTensor"); return }
        #expect(m.hasPrefix("model.layers.2."))
    }

    /// Published Llama-3.2 / Qwen2.5 checkpoints put `rope_theta` and `rope_scaling` at top level;
    /// transformers 5 nests them in `rope_parameters`. Both must give the same config.
    @Test func bothRopeSpellings() throws {
        let base = #"{"model_type":"llama","vocab_size":10,"hidden_size":8,"intermediate_size":4,"num_hidden_layers":1,"num_attention_heads":2,"#
        let legacy =
            base
            + #""rope_theta":500000.0,"rope_scaling":{"rope_type":"llama3","factor":32.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":8192}}"#
        let nested =
            base
            + #""rope_parameters":{"rope_type":"llama3","rope_theta":500000.0,"factor":32.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":8192}}"#
        let a = try JSONDecoder().decode(ModelConfig.self, from: Data(legacy.utf8))
        let b = try JSONDecoder().decode(ModelConfig.self, from: Data(nested.utf8))
        #expect(a == b)
        #expect(a.ropeTheta == 500000 && a.ropeScaling?.factor == 32)
    }

    /// Saved then reloaded, a model still gives transformers' logits.
    @Test func saveLoadKeepsTransformersLogits() throws {
        let src = modelFixture("llama_tied_rope3")
        let e = try ModelExpectation(src)
        let out = tempDir("save")
        try DecoderModel.load(directory: src).save(directory: out)
        let m = try DecoderModel.load(directory: out)
        try m.setBatch(ids: e.ids, batch: e.batch, seq: e.seq)
        m.forward(batch: e.batch, seq: e.seq)
        expectClose(Array(UnsafeBufferPointer(start: m.logits.ptr, count: e.logits.count)), e.logits, atol: 1e-4, "reloaded logits")
        let left = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0.contains(".tmp") }
        #expect(left.isEmpty, "temporary files left behind: \(left)")
    }

    /// Two threads: bit-identical across runs, and within fp32 rounding of the one-thread result
    /// (the first step's gradients of a Mix-MoE stage-2 run and the weights after 5 steps). Each
    /// run is its own process: the thread count is process-wide, and changing it here would
    /// change it under the suites running beside this one.
    @Test func deterministicForThreadCount() throws {
        let s = try DataParallelSetup()
        func run(threads: Int, _ tag: String) throws -> (grads: [Float], weights: [Float]) {
            let out = s.dir.appendingPathComponent(tag), dump = out.appendingPathComponent("dump")
            var args = s.args("stage2", out: out)
            let at = try #require(args.firstIndex(of: "--threads"))
            args[at + 1] = String(threads)
            let (p, err) = try runMixmoe(args + ["--debug-dump", dump.path])
            try #require(p.terminationStatus == 0, "\(err.text)")
            return (
                try flatTensors(dump.appendingPathComponent("grads-rank-0.safetensors")),
                try flatTensors(dump.appendingPathComponent("weights-rank-0.safetensors"))
            )
        }
        let a = try run(threads: 2, "a"), b = try run(threads: 2, "b"), c = try run(threads: 1, "c")
        #expect(a.grads == b.grads && a.weights == b.weights)
        #expect(a.grads.contains { $0 != 0 })
        #expect(relativeError(a.grads, c.grads) < 1e-5 && relativeError(a.weights, c.weights) < 1e-5)
    }
}

/// Model directories are complete for the Hugging Face ecosystem: the tokenizer files
/// transformers' `save_pretrained` writes for the shipped base tokenizer (fixture by
/// scripts/fixtures/make_hf_files_fixture.py, which also checks that AutoTokenizer then adds BOS).
struct HFDirectoryTests {
    /// Every field transformers wrote has the value `HFDirectory` writes, but its version stamp and
    /// the class: mixmoe writes transformers 4's `PreTrainedTokenizerFast`, which 5 also loads (the
    /// fixture script checks that), where 5 writes its own `TokenizersBackend` and `backend`.
    @Test func tokenizerFilesMatchTransformers() throws {
        let dir = tempDir("hf-files")
        defer { try? FileManager.default.removeItem(at: dir) }
        let base = packageRoot.appendingPathComponent("models/base")
        try FileManager.default.copyItem(at: base.appendingPathComponent("config.json"), to: dir.appendingPathComponent("config.json"))
        try HFDirectory.copyTokenizer(from: base, to: dir)
        for file in ["tokenizer_config.json", "generation_config.json"] {
            let want = try #require(
                JSONSerialization.jsonObject(with: Data(contentsOf: fixtures.appendingPathComponent("hf_files/\(file)"))) as? [String: Any])
            let got = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent(file))) as? [String: Any])
            #expect(file != "tokenizer_config.json" || got["tokenizer_class"] as? String == "PreTrainedTokenizerFast")
            for (k, v) in want where !["transformers_version", "backend", "tokenizer_class"].contains(k) {
                let a = try JSONSerialization.data(withJSONObject: ["v": v], options: .sortedKeys)
                let b = try JSONSerialization.data(withJSONObject: ["v": got[k] ?? NSNull()], options: .sortedKeys)
                #expect(a == b, "\(file): \(k) is \(String(decoding: b, as: UTF8.self)), transformers wrote \(String(decoding: a, as: UTF8.self))")
            }
        }
        #expect(try Data(contentsOf: dir.appendingPathComponent("tokenizer.json")) == Data(contentsOf: base.appendingPathComponent("tokenizer.json")))
    }
}
