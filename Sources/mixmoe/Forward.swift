import ArgumentParser
import Foundation
import MixMoE

struct Forward: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a model on token ids and print its logits as JSON: {\"logits\": [[...], ...]}.")

    @Option(help: "Model directory (config.json + model.safetensors).")
    var model: String
    @Option(help: "Comma-separated token ids, e.g. 1,2,3.")
    var ids: String
    @OptionGroup var compute: ComputeOptions

    func run() async throws {
        try compute.apply()
        try await reportingErrors {
            let tokens = try ids.split(separator: ",").map { s -> Int32 in
                guard let v = Int32(s.trimmingCharacters(in: .whitespaces)), v >= 0 else {
                    throw ValidationError("--ids: '\(s)' is not a non-negative integer")
                }
                return v
            }
            guard !tokens.isEmpty else { throw ValidationError("--ids is empty") }
            let m = try DecoderModel.load(directory: URL(fileURLWithPath: model))
            if let bad = tokens.first(where: { Int($0) >= m.config.vocabSize }) {
                throw CLIError("--ids: token \(bad) is outside the vocabulary of \(model) (size \(m.config.vocabSize))")
            }
            m.setBatch(ids: tokens, batch: 1, seq: tokens.count)
            m.forward(batch: 1, seq: tokens.count)
            let V = m.config.vocabSize
            var out = "{\"logits\": ["
            out.reserveCapacity(tokens.count * V * 12)
            for t in 0..<tokens.count {
                out += t == 0 ? "[" : ", ["
                for j in 0..<V {
                    if j > 0 { out += ", " }
                    out += "\(m.logits.ptr[t * V + j])"
                }
                out += "]"
            }
            out += "]}"
            print(out)
        }
    }
}

struct Init: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a randomly initialised dense model (Hugging Face layout) for a named config or a config.json.")

    @Option(help: "Named config (tiny, base, small) or a config.json path.")
    var config: String
    @Option(help: "Output model directory.")
    var out: String
    @Option(help: "Random seed for the initial weights.")
    var seed: UInt64 = 0

    func run() async throws {
        try await reportingErrors {
            let cfg = try resolveConfig(config)
            let m = DecoderModel(config: cfg, seed: seed)
            try m.save(directory: URL(fileURLWithPath: out))
            printErr("wrote \(out) (\(m.store.count) parameters)")
        }
    }
}

/// A named configuration or a config.json file.
func resolveConfig(_ s: String) throws -> ModelConfig {
    if let c = ModelConfig.named(s) { return c }
    guard FileManager.default.fileExists(atPath: s) else {
        throw ValidationError("--config: '\(s)' is neither a named config (tiny, base, small) nor an existing config.json")
    }
    return try ModelConfig.load(URL(fileURLWithPath: s))
}
