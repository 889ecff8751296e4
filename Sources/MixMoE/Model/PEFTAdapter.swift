import Foundation

/// A LoRA model's adapters as a PEFT adapter directory (`adapter_config.json`,
/// `adapter_model.safetensors`), which `peft.PeftModel.from_pretrained(base, DIR)` loads on the
/// unchanged base model: the route to PEFT, vLLM and every tool that takes LoRA adapters.
///
/// PEFT's layout: tensors named `base_model.model.` + the module path + `.lora_A.weight` /
/// `.lora_B.weight` (`A` `[r, in]`, `B` `[out, r]`), scale `lora_alpha / r`, no dropout at
/// inference, no bias.
public enum PEFTAdapter {
    /// The sub-folder of a LoRA model directory that holds its adapter.
    public static let folder = "adapter"

    struct Config: Encodable {
        let peftType = "LORA", taskType = "CAUSAL_LM"
        let r: Int
        let loraAlpha: Double
        let targetModules: [String]
        let loraDropout = 0.0, bias = "none", fanInFanOut = false, inferenceMode = true, useRslora = false
        let baseModelNameOrPath: String?
        enum CodingKeys: String, CodingKey {
            case peftType = "peft_type", taskType = "task_type", r, loraAlpha = "lora_alpha", targetModules = "target_modules"
            case loraDropout = "lora_dropout", bias, fanInFanOut = "fan_in_fan_out", inferenceMode = "inference_mode"
            case useRslora = "use_rslora", baseModelNameOrPath = "base_model_name_or_path"
        }
    }

    /// Writes `model`'s LoRA tensors into `directory` (nothing for a model without LoRA).
    public static func write(_ model: DecoderModel, to directory: URL, baseModel: String? = nil) throws {
        guard let lora = model.config.lora else { return }
        let store = model.store
        let tensors = store.entries.indices.compactMap { i -> (name: String, shape: [Int], values: WeightOperand)? in
            let e = store.entries[i]
            guard e.name.hasSuffix(".lora_A.weight") || e.name.hasSuffix(".lora_B.weight") else { return nil }
            return (name: "base_model.model." + e.name, shape: e.shape, values: store.operand(i))
        }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try SafetensorsFile.write(directory.appendingPathComponent("adapter_model.safetensors"), stored: tensors, metadata: ["format": "pt"])
        let cfg = Config(r: lora.r, loraAlpha: lora.alpha, targetModules: lora.targets, baseModelNameOrPath: baseModel)
        try AtomicFile.writeJSON(cfg, to: directory.appendingPathComponent("adapter_config.json"))
    }
}
