import Foundation

/// Rotary-embedding settings: `rope_type` "default" or "llama3" (Llama 3.x's frequency rescaling).
public struct RopeScaling: Codable, Sendable, Equatable {
    public var ropeType: String
    public var factor: Double?
    public var lowFreqFactor: Double?
    public var highFreqFactor: Double?
    public var originalMaxPositionEmbeddings: Int?

    enum CodingKeys: String, CodingKey {
        case ropeType = "rope_type", type, factor
        case lowFreqFactor = "low_freq_factor", highFreqFactor = "high_freq_factor"
        case originalMaxPositionEmbeddings = "original_max_position_embeddings"
    }

    public init(
        ropeType: String, factor: Double? = nil, lowFreqFactor: Double? = nil,
        highFreqFactor: Double? = nil, originalMaxPositionEmbeddings: Int? = nil
    ) {
        self.ropeType = ropeType
        self.factor = factor
        self.lowFreqFactor = lowFreqFactor
        self.highFreqFactor = highFreqFactor
        self.originalMaxPositionEmbeddings = originalMaxPositionEmbeddings
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        // Older checkpoints spell the key "type".
        ropeType =
            try c.decodeIfPresent(String.self, forKey: .ropeType)
            ?? c.decodeIfPresent(String.self, forKey: .type) ?? "default"
        factor = try c.decodeIfPresent(Double.self, forKey: .factor)
        lowFreqFactor = try c.decodeIfPresent(Double.self, forKey: .lowFreqFactor)
        highFreqFactor = try c.decodeIfPresent(Double.self, forKey: .highFreqFactor)
        originalMaxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .originalMaxPositionEmbeddings)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(ropeType, forKey: .ropeType)
        try c.encodeIfPresent(factor, forKey: .factor)
        try c.encodeIfPresent(lowFreqFactor, forKey: .lowFreqFactor)
        try c.encodeIfPresent(highFreqFactor, forKey: .highFreqFactor)
        try c.encodeIfPresent(originalMaxPositionEmbeddings, forKey: .originalMaxPositionEmbeddings)
    }
}

/// A Llama-family decoder configuration with the keys of Hugging Face's `config.json`
/// (`LlamaConfig` and `Qwen2Config`). Unknown keys are ignored; required keys that are missing or
/// have the wrong type, and inconsistent values, are errors naming the field.
public struct ModelConfig: Codable, Sendable, Equatable {
    public var modelType: String
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int
    public var headDim: Int
    public var rmsNormEps: Double
    public var ropeTheta: Double
    public var ropeScaling: RopeScaling?
    public var maxPositionEmbeddings: Int
    public var tieWordEmbeddings: Bool
    /// Llama's `attention_bias`: biases on q, k, v and o.
    public var attentionBias: Bool
    public var hiddenAct: String
    public var bosTokenId: Int?
    public var eosTokenIds: [Int]
    /// Present on Mix-MoE models: which layers are MoE layers and how they route.
    public var mixMoE: MixMoEConfig?
    /// Present on models with LoRA adapters (baseline).
    public var lora: LoRAConfig?
    /// 0-based indices of blocks inserted by LLaMA-Pro expansion (baseline; they are trained).
    public var expandedLayers: [Int]?
    /// Present on LLaMA-MoE v2 models: the layers whose attention is a mixture of experts.
    public var attentionMoE: AttentionMoEConfig?

    /// Whether transformers lacks this architecture (Mix-MoE layers, LoRA adapters, attention
    /// experts): config.json then names mixmoe's own `model_type` (`mixmoe_llama`, `mixmoe_qwen2`)
    /// and `auto_map`, and the directory carries the PyTorch code (``RemoteCode``), so transformers
    /// loads it only with `trust_remote_code=True` and never as a plain Llama with random FFNs.
    public var needsRemoteCode: Bool { mixMoE != nil || lora != nil || attentionMoE != nil }

    /// The `model_type` prefix of the architectures transformers lacks.
    static let remoteTypePrefix = "mixmoe_"

    /// `model_type`, `architectures` and `auto_map` as config.json states them.
    var hubIdentity: (modelType: String, architecture: String, autoMap: [String: String]?) {
        let base = modelType == "qwen2" ? "Qwen2" : "Llama"
        guard needsRemoteCode else { return (modelType, base + "ForCausalLM", nil) }
        return (
            Self.remoteTypePrefix + modelType, "MixMoE\(base)ForCausalLM",
            [
                "AutoConfig": "configuration_mixmoe.MixMoE\(base)Config",
                "AutoModelForCausalLM": "modeling_mixmoe.MixMoE\(base)ForCausalLM",
            ]
        )
    }

    /// Biases on q/k/v: Qwen2 always, Llama when `attention_bias`.
    public var qkvBias: Bool { modelType == "qwen2" || attentionBias }
    /// Bias on o_proj: Llama with `attention_bias` only.
    public var oBias: Bool { modelType == "llama" && attentionBias }

    enum CodingKeys: String, CodingKey {
        case modelType = "model_type", vocabSize = "vocab_size", hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size", numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads", numKeyValueHeads = "num_key_value_heads"
        case headDim = "head_dim", rmsNormEps = "rms_norm_eps", ropeTheta = "rope_theta"
        case ropeScaling = "rope_scaling", ropeParameters = "rope_parameters"
        case maxPositionEmbeddings = "max_position_embeddings"
        case tieWordEmbeddings = "tie_word_embeddings", attentionBias = "attention_bias"
        case mlpBias = "mlp_bias", hiddenAct = "hidden_act"
        case bosTokenId = "bos_token_id", eosTokenId = "eos_token_id"
        case architectures, torchDtype = "torch_dtype", mixMoE = "mix_moe", lora, expandedLayers = "llama_pro_expanded_layers"
        case attentionMoE = "attn_moe", autoMap = "auto_map"
    }

    /// transformers 5 nests theta and scaling in `rope_parameters`.
    struct RopeParameters: Decodable {
        var ropeTheta: Double?
        var scaling: RopeScaling
        enum K: String, CodingKey { case ropeTheta = "rope_theta" }
        init(from decoder: Decoder) throws {
            ropeTheta = try decoder.container(keyedBy: K.self).decodeIfPresent(Double.self, forKey: .ropeTheta)
            scaling = try RopeScaling(from: decoder)
        }
    }

    /// Memberwise init for tiny test models and named configs. Defaults are transformers'
    /// (`rms_norm_eps` 1e-6, as when the field is absent from config.json).
    public init(
        modelType: String = "llama", vocabSize: Int, hiddenSize: Int, intermediateSize: Int,
        numHiddenLayers: Int, numAttentionHeads: Int, numKeyValueHeads: Int? = nil,
        headDim: Int? = nil, rmsNormEps: Double = 1e-6, ropeTheta: Double = 10000,
        ropeScaling: RopeScaling? = nil, maxPositionEmbeddings: Int = 2048,
        tieWordEmbeddings: Bool = false, attentionBias: Bool = false,
        bosTokenId: Int? = nil, eosTokenIds: [Int] = []
    ) {
        (self.modelType, self.vocabSize, self.hiddenSize, self.intermediateSize) = (modelType, vocabSize, hiddenSize, intermediateSize)
        (self.numHiddenLayers, self.numAttentionHeads) = (numHiddenLayers, numAttentionHeads)
        self.numKeyValueHeads = numKeyValueHeads ?? numAttentionHeads
        self.headDim = headDim ?? hiddenSize / numAttentionHeads
        (self.rmsNormEps, self.ropeTheta, self.ropeScaling) = (rmsNormEps, ropeTheta, ropeScaling)
        (self.maxPositionEmbeddings, self.tieWordEmbeddings, self.attentionBias) = (maxPositionEmbeddings, tieWordEmbeddings, attentionBias)
        (self.hiddenAct, self.bosTokenId, self.eosTokenIds) = ("silu", bosTokenId, eosTokenIds)
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        modelType = try c.decode(String.self, forKey: .modelType)
        // mixmoe's own types name their base family: mixmoe_llama -> llama
        if modelType.hasPrefix(Self.remoteTypePrefix) { modelType = String(modelType.dropFirst(Self.remoteTypePrefix.count)) }
        vocabSize = try c.decode(Int.self, forKey: .vocabSize)
        hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
        intermediateSize = try c.decode(Int.self, forKey: .intermediateSize)
        numHiddenLayers = try c.decode(Int.self, forKey: .numHiddenLayers)
        numAttentionHeads = try c.decode(Int.self, forKey: .numAttentionHeads)
        numKeyValueHeads = try c.decodeIfPresent(Int.self, forKey: .numKeyValueHeads) ?? numAttentionHeads
        headDim =
            try c.decodeIfPresent(Int.self, forKey: .headDim)
            ?? (numAttentionHeads > 0 ? hiddenSize / numAttentionHeads : 0)
        rmsNormEps = try c.decodeIfPresent(Double.self, forKey: .rmsNormEps) ?? 1e-6
        let params = try c.decodeIfPresent(RopeParameters.self, forKey: .ropeParameters)
        ropeTheta = try c.decodeIfPresent(Double.self, forKey: .ropeTheta) ?? params?.ropeTheta ?? 10000
        ropeScaling = try c.decodeIfPresent(RopeScaling.self, forKey: .ropeScaling) ?? params?.scaling
        if ropeScaling?.ropeType == "default" { ropeScaling = nil }
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? 2048
        tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? false
        attentionBias = try c.decodeIfPresent(Bool.self, forKey: .attentionBias) ?? false
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? "silu"
        bosTokenId = try c.decodeIfPresent(Int.self, forKey: .bosTokenId)
        if let one = try? c.decodeIfPresent(Int.self, forKey: .eosTokenId) {
            eosTokenIds = [one]
        } else {
            eosTokenIds = try c.decodeIfPresent([Int].self, forKey: .eosTokenId) ?? []
        }
        mixMoE = try c.decodeIfPresent(MixMoEConfig.self, forKey: .mixMoE)
        lora = try c.decodeIfPresent(LoRAConfig.self, forKey: .lora)
        expandedLayers = try c.decodeIfPresent([Int].self, forKey: .expandedLayers)
        attentionMoE = try c.decodeIfPresent(AttentionMoEConfig.self, forKey: .attentionMoE)
        if try c.decodeIfPresent(Bool.self, forKey: .mlpBias) == true {
            throw ModelError.unsupported(file: ModelDirectory.configName, field: "mlp_bias", value: "true", supported: "false")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        let hub = hubIdentity
        try c.encode([hub.architecture], forKey: .architectures)
        try c.encode(hub.modelType, forKey: .modelType)
        try c.encodeIfPresent(hub.autoMap, forKey: .autoMap)
        let sizes: [(Int, CodingKeys)] = [
            (vocabSize, .vocabSize), (hiddenSize, .hiddenSize), (intermediateSize, .intermediateSize),
            (numHiddenLayers, .numHiddenLayers), (numAttentionHeads, .numAttentionHeads),
            (numKeyValueHeads, .numKeyValueHeads), (headDim, .headDim),
        ]
        for (v, k) in sizes { try c.encode(v, forKey: k) }
        try c.encode(rmsNormEps, forKey: .rmsNormEps)
        try c.encode(ropeTheta, forKey: .ropeTheta)
        try c.encodeIfPresent(ropeScaling, forKey: .ropeScaling)
        try c.encode(maxPositionEmbeddings, forKey: .maxPositionEmbeddings)
        try c.encode(tieWordEmbeddings, forKey: .tieWordEmbeddings)
        if modelType == "llama" {
            try c.encode(attentionBias, forKey: .attentionBias)
            try c.encode(false, forKey: .mlpBias)
        }
        try c.encode(hiddenAct, forKey: .hiddenAct)
        try c.encodeIfPresent(bosTokenId, forKey: .bosTokenId)
        if eosTokenIds.count == 1 {
            try c.encode(eosTokenIds[0], forKey: .eosTokenId)
        } else if !eosTokenIds.isEmpty {
            try c.encode(eosTokenIds, forKey: .eosTokenId)
        }
        try c.encode("float32", forKey: .torchDtype)
        try c.encodeIfPresent(mixMoE, forKey: .mixMoE)
        try c.encodeIfPresent(lora, forKey: .lora)
        try c.encodeIfPresent(expandedLayers, forKey: .expandedLayers)
        try c.encodeIfPresent(attentionMoE, forKey: .attentionMoE)
    }

    /// Checks internal consistency; `file` names the source in the error.
    public func validate(file: String = ModelDirectory.configName) throws {
        func need(_ ok: Bool, _ field: String, _ expected: String) throws {
            if !ok { throw ModelError.config(file: file, field: field, expected: expected) }
        }
        try need(["llama", "qwen2"].contains(modelType), "model_type", "\"llama\" or \"qwen2\" (got \"\(modelType)\")")
        try need(vocabSize > 0, "vocab_size", "a positive integer")
        try need(hiddenSize > 0, "hidden_size", "a positive integer")
        try need(intermediateSize > 0, "intermediate_size", "a positive integer")
        try need(numHiddenLayers > 0, "num_hidden_layers", "a positive integer")
        try need(numAttentionHeads > 0, "num_attention_heads", "a positive integer")
        try need(
            numKeyValueHeads > 0 && numAttentionHeads % numKeyValueHeads == 0,
            "num_key_value_heads", "a positive divisor of num_attention_heads (\(numAttentionHeads))")
        try need(
            headDim > 0 && headDim % 2 == 0, "head_dim",
            "a positive even integer (default hidden_size / num_attention_heads)")
        try need(rmsNormEps > 0, "rms_norm_eps", "a positive number")
        try need(ropeTheta > 0, "rope_theta", "a positive number")
        try need(maxPositionEmbeddings > 0, "max_position_embeddings", "a positive integer")
        try need(hiddenAct == "silu", "hidden_act", "\"silu\" (SwiGLU FFN)")
        try mixMoE?.validate(layers: numHiddenLayers, intermediateSize: intermediateSize, file: file)
        if let a = attentionMoE {
            try need(
                !a.layers.isEmpty && a.layers.allSatisfy { (0..<numHiddenLayers).contains($0) } && Set(a.layers).count == a.layers.count,
                "attn_moe.layers", "distinct layer indices in 0..<\(numHiddenLayers)")
            try need(
                (1...numKeyValueHeads).contains(a.topK), "attn_moe.top_k_attn",
                "1...\(numKeyValueHeads) (the experts are the KV heads; got \(a.topK))")
            try need(a.scale > 0 && a.scale.isFinite, "attn_moe.scale_factor_attn", "a positive number")
        }
        if let s = ropeScaling {
            try need(s.ropeType == "llama3", "rope_scaling.rope_type", "\"default\" or \"llama3\" (got \"\(s.ropeType)\")")
            try need((s.factor ?? 0) > 0, "rope_scaling.factor", "a positive number")
            try need(s.lowFreqFactor != nil, "rope_scaling.low_freq_factor", "a number")
            try need(
                (s.highFreqFactor ?? 0) > (s.lowFreqFactor ?? 0), "rope_scaling.high_freq_factor",
                "a number larger than low_freq_factor")
            try need(
                (s.originalMaxPositionEmbeddings ?? 0) > 0, "rope_scaling.original_max_position_embeddings",
                "a positive integer")
        }
    }

    /// Reads and validates `config.json`, mapping decoding failures to errors naming the field.
    public static func load(_ url: URL) throws -> ModelConfig {
        guard let data = try? Data(contentsOf: url) else {
            throw ModelError.missingFile(url.path, hint: "a model directory needs config.json.")
        }
        let cfg: ModelConfig
        do {
            cfg = try JSONDecoder().decode(ModelConfig.self, from: data)
        } catch let e as DecodingError {
            throw ModelError.config(file: url.path, field: e.fieldPath, expected: e.expectation)
        } catch let e as ModelError {
            if case .unsupported(_, let f, let v, let s) = e {
                throw ModelError.unsupported(file: url.path, field: f, value: v, supported: s)
            }
            throw e
        }
        try cfg.validate(file: url.path)
        return cfg
    }

    // MARK: named configurations

    /// A few-hundred-thousand-parameter model for tests and quick demos.
    public static let tiny = ModelConfig(
        vocabSize: 4096, hiddenSize: 128, intermediateSize: 352,
        numHiddenLayers: 4, numAttentionHeads: 4, numKeyValueHeads: 2,
        rmsNormEps: 1e-5, tieWordEmbeddings: true)
    /// The benchmark configuration of the core and performance issues.
    public static let small = ModelConfig(
        vocabSize: 8192, hiddenSize: 512, intermediateSize: 1408,
        numHiddenLayers: 8, numAttentionHeads: 8, numKeyValueHeads: 4,
        rmsNormEps: 1e-5, tieWordEmbeddings: true)
    /// The embedded base model: 8 layers (so MoE placements bottom/top/dense-bottom differ),
    /// d_ff divisible by 2, 4 and 8 experts, about 8M parameters (32 MB in fp32).
    public static let base = ModelConfig(
        vocabSize: 8192, hiddenSize: 256, intermediateSize: 704,
        numHiddenLayers: 8, numAttentionHeads: 4, numKeyValueHeads: 2,
        rmsNormEps: 1e-5, maxPositionEmbeddings: 512, tieWordEmbeddings: true)
    /// The shape of meta-llama/Llama-3.2-1B (its config.json on the Hugging Face hub): the paper's
    /// base model, 1.24 B parameters.
    public static let llama32_1B = ModelConfig(
        vocabSize: 128_256, hiddenSize: 2048, intermediateSize: 8192,
        numHiddenLayers: 16, numAttentionHeads: 32, numKeyValueHeads: 8, headDim: 64,
        rmsNormEps: 1e-5, ropeTheta: 500_000,
        ropeScaling: RopeScaling(
            ropeType: "llama3", factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192),
        maxPositionEmbeddings: 131_072, tieWordEmbeddings: true, bosTokenId: 128_000, eosTokenIds: [128_001])
    /// The shape of Qwen/Qwen2.5-0.5B (its config.json on the hub): 494 M parameters, q/k/v biases.
    public static let qwen25_05B = ModelConfig(
        modelType: "qwen2", vocabSize: 151_936, hiddenSize: 896, intermediateSize: 4864,
        numHiddenLayers: 24, numAttentionHeads: 14, numKeyValueHeads: 2,
        rmsNormEps: 1e-6, ropeTheta: 1_000_000, maxPositionEmbeddings: 32_768, tieWordEmbeddings: true,
        bosTokenId: 151_643, eosTokenIds: [151_643])

    /// Every named configuration, by the name `--config` takes.
    public static let namedConfigs: [(name: String, config: ModelConfig)] = [
        ("tiny", tiny), ("base", base), ("small", small), ("llama-3.2-1b", llama32_1B), ("qwen2.5-0.5b", qwen25_05B),
    ]

    public static func named(_ name: String) -> ModelConfig? { namedConfigs.first { $0.name == name.lowercased() }?.config }

    /// A named configuration (tiny, base, small, llama-3.2-1b, qwen2.5-0.5b) or a config.json file.
    public static func resolve(_ s: String) throws -> ModelConfig {
        if let c = named(s) { return c }
        guard FileManager.default.fileExists(atPath: s) else {
            let names = namedConfigs.map(\.name).joined(separator: ", ")
            throw ModelError.missingFile(s, hint: "--config takes a named config (\(names)) or a config.json path")
        }
        return try load(URL(fileURLWithPath: s))
    }
}

/// LoRA adapters on the attention and FFN projections (PEFT naming).
public struct LoRAConfig: Codable, Sendable, Equatable {
    public var r: Int
    public var alpha: Double
    /// Module names adapted in every layer, e.g. q_proj ... down_proj.
    public var targets: [String]
    public static let allLinear = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    public init(r: Int = 8, alpha: Double = 16, targets: [String] = LoRAConfig.allLinear) {
        self.r = r; self.alpha = alpha; self.targets = targets
    }
}

/// LLaMA-MoE v2's attention MoE (Qu et al. 2024; its `MixtralAttentionMoE`): in each listed
/// layer every KV head, with the query heads that share it, is one expert. A linear gate without
/// bias on the attention input (`self_attn.gate.weight`, `[kvHeads, d]`) gives softmax weights;
/// each token keeps the `topK` largest, renormalised to sum to one and multiplied by `scale`;
/// an expert attends only among the tokens routed to it (their original positions kept for the
/// rotary embedding), and a token's output is the weighted sum of its experts' `o_proj` outputs.
/// A model is converted from grouped-query attention by giving each expert its own copy of its
/// KV head (`num_key_value_heads` becomes the number of experts; `Upcycling.llamaMoEv2`).
public struct AttentionMoEConfig: Codable, Sendable, Equatable {
    public var layers: [Int]
    public var topK: Int
    public var scale: Double
    enum CodingKeys: String, CodingKey { case layers, topK = "top_k_attn", scale = "scale_factor_attn" }
    public init(layers: [Int], topK: Int, scale: Double) { self.layers = layers; self.topK = topK; self.scale = scale }
}

extension ModelConfig {
    /// The end-of-sequence id training appends to every example and packed segment: the first of
    /// `eos_token_id`. Training cannot run without one.
    public func trainingEOS() throws -> Int32 {
        guard let e = eosTokenIds.first else {
            throw ModelError.config(file: ModelDirectory.configName, field: "eos_token_id", expected: "an id (training needs EOS)")
        }
        return Int32(e)
    }
}
