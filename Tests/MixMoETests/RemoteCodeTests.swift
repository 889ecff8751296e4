import Foundation
import Testing

@testable import MixMoE

/// The transformers remote code mixmoe writes into model directories is the PyTorch code kept in
/// python/mixmoe_torch/ (the interop tests in python/tests/ run that code against mixmoe), byte
/// for byte: regenerate Sources/MixMoE/Model/RemoteCode.swift with scripts/tools/embed_remote_code.py.
struct RemoteCodeTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func embeddedCodeEqualsThePythonPackage() throws {
        #expect(RemoteCode.files.map(\.name) == ["configuration_mixmoe.py", "modeling_mixmoe.py"])
        for (name, text) in RemoteCode.files {
            let file = try String(contentsOf: Self.repo.appendingPathComponent("python/mixmoe_torch/\(name)"), encoding: .utf8)
            #expect(text + "\n" == file, "\(name) differs from python/mixmoe_torch/\(name): run scripts/tools/embed_remote_code.py")
        }
    }

    /// A Mix-MoE directory names mixmoe's model type and carries the code `auto_map` points at;
    /// a dense one stays transformers' Llama with no code; both read back as the same model.
    @Test func moeDirectoriesCarryTheirCodeAndDenseOnesDoNot() throws {
        let dir = tempDir("remote")
        let dense = try DecoderModel.load(directory: modelFixture("qwen2_bias"))
        try dense.save(directory: dir)
        func config() throws -> [String: Any] {
            try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("config.json"))) as! [String: Any]
        }
        #expect(try config()["model_type"] as? String == "qwen2")
        #expect(try config()["auto_map"] == nil)
        let moe = try Upcycling.upcycle(dense, MixMoEConfig(moeLayers: [1], hiddenSize: dense.config.hiddenSize))
        try moe.save(directory: dir)
        let c = try config()
        #expect(c["model_type"] as? String == "mixmoe_qwen2")
        #expect(c["architectures"] as? [String] == ["MixMoEQwen2ForCausalLM"])
        #expect((c["auto_map"] as? [String: String])?["AutoModelForCausalLM"] == "modeling_mixmoe.MixMoEQwen2ForCausalLM")
        for (name, _) in RemoteCode.files { #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent(name).path)) }
        let back = try DecoderModel.load(directory: dir)
        #expect(back.config == moe.config && back.config.modelType == "qwen2" && back.config.qkvBias)
        // saved dense again: the code goes, so nothing points transformers at it
        try dense.save(directory: dir)
        for (name, _) in RemoteCode.files { #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent(name).path)) }
    }
}
