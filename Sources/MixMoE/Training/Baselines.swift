import Foundation

/// Model transformations of the paper's baselines (Section IV; docs/DESIGN.md, *Baselines and experiments*).
public enum Baselines {
    /// LoRA on every attention and FFN projection (rank `r`, `alpha`): A ~ N(0, 1/in)-scaled
    /// Gaussian, B = 0, so the adapted model starts exactly as the base.
    public static func addLoRA(_ base: DecoderModel, r: Int = 8, alpha: Double = 16, seed: UInt64 = 0) throws -> DecoderModel {
        var c = base.config
        guard c.lora == nil else { throw ModelError.config(file: ModelDirectory.configName, field: "lora", expected: "a model without LoRA adapters") }
        c.lora = LoRAConfig(r: r, alpha: alpha)
        let store = ParameterStore(layout: DecoderModel.fullLayout(c))
        var rng = SplitMix64(seed: seed)
        for e in store.entries {
            let w = store.w(store.id(e.name)!)
            if let src = base.store.id(e.name) {
                w.update(from: base.store.w(src), count: e.count)
            } else if e.name.hasSuffix(".lora_A.weight") {
                let std = 1 / Float(e.shape[1]).squareRoot()
                for i in 0..<e.count { w[i] = std * rng.nextGaussian() }
            }  // lora_B stays 0
        }
        return DecoderModel(config: c, store: store)
    }

    /// LLaMA-Pro block expansion: after every `every` original blocks insert a copy of the block
    /// before it with `o_proj` and `down_proj` zeroed, so each new block is the identity at first.
    /// The new blocks' indices are recorded in the config (they are the trainable part).
    public static func expandLlamaPro(_ base: DecoderModel, every: Int = 4) throws -> DecoderModel {
        var c = base.config
        guard c.mixMoE == nil, c.lora == nil, c.expandedLayers == nil else {
            throw ModelError.config(file: ModelDirectory.configName, field: "architecture", expected: "a plain dense model for LLaMA-Pro expansion")
        }
        guard every >= 1, every <= c.numHiddenLayers else {
            throw ModelError.config(file: "--every", field: "every", expected: "between 1 and num_hidden_layers (\(c.numHiddenLayers))")
        }
        var source: [Int] = []  // for each new layer: the original layer it copies
        var isNew: [Bool] = []
        for i in 0..<c.numHiddenLayers {
            source.append(i); isNew.append(false)
            if (i + 1) % every == 0 { source.append(i); isNew.append(true) }
        }
        c.numHiddenLayers = source.count
        c.expandedLayers = isNew.indices.filter { isNew[$0] }
        let store = ParameterStore(layout: DecoderModel.fullLayout(c))
        for e in store.entries {
            var srcName = e.name
            var zero = false
            if e.name.hasPrefix("model.layers.") {
                let parts = e.name.split(separator: ".", maxSplits: 3)
                let j = Int(parts[2])!
                srcName = "model.layers.\(source[j]).\(parts[3])"
                zero = isNew[j] && (e.name.hasSuffix("o_proj.weight") || e.name.hasSuffix("o_proj.bias") || e.name.hasSuffix("down_proj.weight"))
            }
            let w = store.w(store.id(e.name)!)
            if zero { w.update(repeating: 0, count: e.count) } else { w.update(from: base.store.w(base.store.id(srcName)!), count: e.count) }
        }
        return DecoderModel(config: c, store: store)
    }
}
