import Foundation

/// Turning a dense model into a Mix-MoE model, and the stage-1 -> stage-2 transition.
public enum Upcycling {
    /// LLaMA-MoE neuron slicing: with s = d_ff / n, expert e gets `gate[e*s..<(e+1)*s, :]`,
    /// `up[e*s..<(e+1)*s, :]` and `down[:, e*s..<(e+1)*s]`. SwiGLU is separable along d_ff, so the
    /// n experts summed at weight 1 equal the dense FFN exactly. With `upcycle = copy` every
    /// expert is the whole FFN instead (weights renormalised over the selected experts, so the layer
    /// starts as the dense FFN). Routers start fresh (`initializeRouters`). The result is a
    /// stage-1 model (LM group only).
    public static func upcycle(_ dense: DecoderModel, _ cfg: MixMoEConfig) throws -> DecoderModel {
        try upcycle(config: dense.config, weights: dense.store, cfg)
    }

    /// Upcycles the dense model of configuration `dc` whose weights `src` holds (a model in memory,
    /// or ``WeightFiles`` checked against the dense layout): dense tensors are copied once into the
    /// new store, and each MoE layer's FFN passes through one temporary buffer, so the peak is the
    /// new model plus one FFN.
    public static func upcycle(config dc: ModelConfig, weights src: TensorSource, _ cfg: MixMoEConfig) throws -> DecoderModel {
        var c = dc
        guard c.mixMoE == nil else {
            throw ModelError.config(file: ModelDirectory.configName, field: "mix_moe", expected: "a dense model (this one is already Mix-MoE)")
        }
        var m = cfg
        m.stage = 1
        c.mixMoE = m
        try c.validate(file: "--experts/--placement")
        let store = ParameterStore(layout: DecoderModel.fullLayout(c))
        // dense tensors keep their names
        for (i, e) in store.entries.enumerated() where src.shape(e.name) != nil { src.read(e.name, into: store.w(i)) }
        let d = c.hiddenSize, f = c.intermediateSize, n = m.expertsPerGroup, s = m.expertWidth(f)
        let gate = FloatBuffer(count: f * d), up = FloatBuffer(count: f * d), down = FloatBuffer(count: d * f)
        for i in m.moeLayers {
            let p = "model.layers.\(i).mlp."
            src.read(p + "gate_proj.weight", into: gate.ptr)  // [f, d]
            src.read(p + "up_proj.weight", into: up.ptr)  // [f, d]
            src.read(p + "down_proj.weight", into: down.ptr)  // [d, f]
            for e in 0..<n {
                let q = p + "lm_experts.\(e)."
                let first = m.upcycle == .copy ? 0 : e * s  // copy: every expert is the whole FFN
                store.w(store.id(q + "gate_proj.weight")!).update(from: gate.ptr + first * d, count: s * d)
                store.w(store.id(q + "up_proj.weight")!).update(from: up.ptr + first * d, count: s * d)
                let dst = store.w(store.id(q + "down_proj.weight")!)  // [d, s]
                for r in 0..<d { (dst + r * s).update(from: down.ptr + r * f + first, count: s) }
            }
        }
        initializeRouters(store, c)
        return DecoderModel(config: c, store: store)
    }

    /// Router weights: columns on `h` ~ N(0, std^2), columns on `T h` ~ N(0, (std * spectral)^2),
    /// biases 0; the `random` transform from the recorded seed. Deterministic in `mix_moe.seed`.
    public static func initializeRouters(_ store: ParameterStore, _ c: ModelConfig) {
        guard let m = c.mixMoE else { return }
        let d = c.hiddenSize, width = m.routerInputWidth(d)
        var rng = SplitMix64(seed: m.seed)
        for e in store.entries where e.name.hasSuffix("_router.weight") {
            let w = store.w(store.id(e.name)!)
            for r in 0..<m.expertsPerGroup {
                for col in 0..<width {
                    let std = m.routerInitStd * (col < d ? 1 : m.spectralInitScale)
                    w[r * width + col] = Float(std) * rng.nextGaussian()
                }
            }
        }
        for e in store.entries where e.name.hasSuffix("_router.bias") {
            store.w(store.id(e.name)!).update(repeating: 0, count: e.count)
        }
        if let id = store.id("model.router_transform") {
            let T = RouterTransform.random(d: d, seed: m.seed)
            store.w(id).update(from: T, count: T.count)
        }
    }

    /// Stage 2 begins: a model with the MT group added as an exact copy of the LM group (experts
    /// and router), `stage = 2`. With `combine = mean` it computes what the stage-1 model computed.
    public static func beginStage2(_ m1: DecoderModel) throws -> DecoderModel {
        try beginStage2(config: m1.config, weights: m1.store)
    }

    /// ``beginStage2(_:)`` for the stage-1 model of configuration `c1` whose weights `src` holds
    /// (in memory, or ``WeightFiles``): every tensor is copied once into the stage-2 store.
    /// With `dtype: .bf16` the views stage 2 freezes are held in bf16 (read straight into it).
    public static func beginStage2(config c1: ModelConfig, weights src: TensorSource, dtype: DType = .f32) throws -> DecoderModel {
        guard var m = c1.mixMoE, m.groups == 2 else {
            throw ModelError.config(file: ModelDirectory.configName, field: "mix_moe.groups", expected: "2 (a Mix-MoE model) for stage 2")
        }
        guard m.stage == 1 else {
            throw ModelError.config(file: ModelDirectory.configName, field: "mix_moe.stage", expected: "1 (this model is already in stage 2)")
        }
        m.stage = 2
        var c = c1
        c.mixMoE = m
        let store = ParameterStore(layout: DecoderModel.fullLayout(c))
        if dtype == .bf16 { store.holdFrozenMatrices(as: .bf16, trainable: { FreezePlan.stage2.isTrainable($0, c) }, keepValues: false) }
        for (i, e) in store.entries.enumerated() {
            let name = src.shape(e.name) != nil ? e.name : e.name.replacingOccurrences(of: ".mt_", with: ".lm_")
            src.copy(name, into: store, view: i)
        }
        return DecoderModel(config: c, store: store)
    }
}

/// A model that cannot enter the requested Mix-MoE stage.
public enum StageError: LocalizedError, Equatable {
    case notMoE(model: String)
    case wrongStage(model: String, stage: Int, expected: String)
    public var errorDescription: String? {
        switch self {
        case .notMoE(let m): return "\(m) is a dense model. Hint: run `mixmoe upcycle` first."
        case .wrongStage(let m, let s, let e): return "\(m) is a stage-\(s) model; \(e)."
        }
    }
}

extension Upcycling {
    /// The model that stage `stage` trains, from the model a user gave: stage 1 takes an upcycled
    /// (stage-1) model as it is; stage 2 takes the stage-1 output and adds the MT group
    /// (``beginStage2(_:)``). `lbCoef` overrides the recorded load-balance weight. The freeze plan
    /// of the stage is applied.
    public static func prepare(_ m: DecoderModel, stage: Int, lbCoef: Double? = nil, name: String) throws -> DecoderModel {
        try checkEntry(m.config, stage: stage, name: name)
        return finish(stage == 2 ? try beginStage2(m) : m, stage: stage, lbCoef: lbCoef)
    }

    /// Applies the load-balance override and the stage's freeze plan.
    private static func finish(_ m: DecoderModel, stage: Int, lbCoef: Double?) -> DecoderModel {
        var out = m
        if let lbCoef {
            var c = out.config
            c.mixMoE!.lbCoef = lbCoef
            out = DecoderModel(config: c, store: out.store)
        }
        (stage == 1 ? FreezePlan.stage1 : FreezePlan.stage2).apply(to: out)
        return out
    }

    /// The configuration of the model stage `stage` trains from the model in `directory` (read from
    /// its config.json only: for planning memory before any weight is loaded).
    public static func stageConfig(directory: URL, stage: Int, name: String) throws -> ModelConfig {
        var c = try ModelConfig.load(ModelDirectory(directory).config)
        try checkEntry(c, stage: stage, name: name)
        if stage == 2 {
            guard c.mixMoE!.groups == 2 else {
                throw ModelError.config(file: ModelDirectory.configName, field: "mix_moe.groups", expected: "2 (a Mix-MoE model) for stage 2")
            }
            c.mixMoE!.stage = 2
        }
        return c
    }

    /// Both stages start from a stage-1 model: the upcycled one, or stage 1's output.
    private static func checkEntry(_ c: ModelConfig, stage: Int, name: String) throws {
        guard let mc = c.mixMoE else { throw StageError.notMoE(model: name) }
        guard mc.stage == 1 else {
            throw StageError.wrongStage(
                model: name, stage: mc.stage, expected: stage == 2 ? "give the stage-1 output" : "stage 1 starts from an upcycled model")
        }
    }

    /// ``prepare(_:stage:lbCoef:name:)`` for the model in `directory`, read tensor by tensor: stage 2
    /// builds the stage-2 model straight from the stage-1 files, never holding both. With
    /// `dtype: .bf16` the weight matrices the stage freezes are held in bf16.
    public static func prepare(directory: URL, stage: Int, lbCoef: Double? = nil, name: String, dtype: DType = .f32) throws -> DecoderModel {
        let c = try ModelConfig.load(ModelDirectory(directory).config)
        guard stage == 2, let mc = c.mixMoE, mc.stage == 1, mc.groups == 2 else {
            let m = try DecoderModel.load(directory: directory, dtype: dtype, trainable: { FreezePlan.stage1.isTrainable($0, c) })
            return try prepare(m, stage: stage, lbCoef: lbCoef, name: name)
        }
        let files = try WeightFiles(directory: directory)
        try files.check(against: DecoderModel.fullLayout(c))
        return finish(try beginStage2(config: c, weights: files, dtype: dtype), stage: 2, lbCoef: lbCoef)
    }

    /// Upcycles the dense model in `directory`, reading its tensors one by one (``upcycle(config:weights:_:)``).
    public static func upcycle(directory: URL, _ cfg: (ModelConfig) throws -> MixMoEConfig) throws -> DecoderModel {
        let c = try ModelConfig.load(ModelDirectory(directory).config)
        let files = try WeightFiles(directory: directory)
        try files.check(against: DecoderModel.fullLayout(c))
        return try upcycle(config: c, weights: files, cfg(c))
    }
}

extension Upcycling {
    /// LLaMA-MoE v2's attention experts (its `from_vanilla_attention`): every KV head of a
    /// grouped-query attention is split into `split` experts, each owning `heads / (kvHeads * split)`
    /// consecutive query heads (their rows of q_proj and columns of o_proj, unchanged in place) and
    /// its own copy of the KV head (k_proj and v_proj grow to one head per expert). Every layer is
    /// converted (`num_key_value_heads` is one number for the model), the listed ones get a gate
    /// (Xavier-normal, no bias, seeded; nil: every layer). Everything else is copied by name, so a
    /// model whose MLPs are already experts keeps them. With every expert selected, a uniform gate
    /// and `scale` = the number of experts, the converted model computes the original's function.
    public static func attentionExperts(
        _ m: DecoderModel, split: Int, topK: Int, scale: Double, layers: [Int]? = nil, seed: UInt64 = 0
    ) throws -> DecoderModel {
        var c = m.config
        let g = c.numKeyValueHeads, hd = c.headDim, experts = g * split
        guard c.attentionMoE == nil else {
            throw ModelError.config(file: ModelDirectory.configName, field: "attn_moe", expected: "a model without attention experts (this one has them)")
        }
        guard split >= 1, c.numAttentionHeads % experts == 0 else {
            throw ModelError.config(
                file: ModelDirectory.configName, field: "num_attention_heads",
                expected: "a multiple of num_key_value_heads x split = \(experts) (got \(c.numAttentionHeads))")
        }
        c.numKeyValueHeads = experts
        c.attentionMoE = AttentionMoEConfig(layers: layers ?? Array(0..<c.numHiddenLayers), topK: topK, scale: scale)
        try c.validate(file: "LLaMA-MoE v2 conversion")
        let store = ParameterStore(layout: DecoderModel.fullLayout(c))
        var rng = SplitMix64(seed: seed ^ 0x6c6c_616d_615f_7632)
        let std = Float((2 / Double(c.hiddenSize + experts)).squareRoot())
        for (i, e) in store.entries.enumerated() {
            let dst = store.w(i)
            if e.name.hasSuffix("self_attn.gate.weight") {
                for j in 0..<e.count { dst[j] = std * rng.nextGaussian() }
                continue
            }
            guard let sid = m.store.id(e.name) else {
                throw ModelError.config(file: "LLaMA-MoE v2 conversion", field: e.name, expected: "a tensor of the source model")
            }
            let src = m.store.w(sid)
            if e.name.hasSuffix("self_attn.k_proj.weight") || e.name.hasSuffix("self_attn.v_proj.weight")
                || e.name.hasSuffix("self_attn.k_proj.bias") || e.name.hasSuffix("self_attn.v_proj.bias")
            {
                // expert x: rows of the source's KV head x / split
                let per = e.count / experts  // hd rows of the head (x d for weights, 1 for biases)
                precondition(per * experts == e.count && m.store.entries[sid].count == per * g && per % hd == 0)
                for x in 0..<experts { (dst + x * per).update(from: src + (x / split) * per, count: per) }
            } else {
                precondition(m.store.entries[sid].count == e.count, "\(e.name): shape changed")
                dst.update(from: src, count: e.count)
            }
        }
        return DecoderModel(config: c, store: store)
    }
}
