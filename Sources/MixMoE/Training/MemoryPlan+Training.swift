import Foundation

extension MemoryPlan {
    /// The plan of training `config` (the model of the stage, with its Mix-MoE settings) with
    /// `freeze` in micro-batches of `microTokens` tokens of `seq`-token sequences, over `ranks`
    /// processes (ZeRO-1 when `zero1`), frozen weight matrices held in `dtype`. `process` is what
    /// the process holds already (its RSS).
    public static func training(
        config c: ModelConfig, freeze: FreezePlan, microTokens: Int, seq: Int, ranks: Int = 1, zero1: Bool = false,
        dtype: DType = .f32, process: Int = residentBytes()
    ) -> MemoryPlan {
        let m = DecoderModel(config: c, store: ParameterStore(layout: DecoderModel.fullLayout(c)))
        freeze.apply(to: m)
        m.store.holdFrozenMatrices(as: dtype, keepValues: false)  // nothing is touched: a lazy map
        let n = m.store.count, t = m.store.trainableCount
        let act = FloatBuffer.countingAllocations { m.reserve(batch: max(1, microTokens / seq), seq: seq) }
        var items = [
            Item(name: "process", bytes: process, note: "binary, tokenizer, data read so far (resident now)"),
            Item(name: "weights", bytes: m.store.heldBytes, note: weightsNote(m.store)),
            Item(name: "gradients", bytes: 4 * t, note: "\(t.formatted()) trainable parameters"),
        ]
        let shard = zero1 && ranks > 1 ? (t + ranks - 1) / ranks : t
        items.append(
            Item(name: "optimizer", bytes: 8 * shard, note: zero1 && ranks > 1 ? "AdamW m and v, 1/\(ranks) (ZeRO-1)" : "AdamW m and v"))
        if ranks > 1 {
            let runs = TrainableRuns(m.store).runs.count
            let staging = zero1 ? 4 * (t + shard) : runs > 1 ? 4 * t : 0
            if staging > 0 { items.append(Item(name: "collectives", bytes: staging, note: "packed gradients for MPI")) }
        }
        items.append(
            Item(
                name: "activations", bytes: act,
                note: "one micro-batch of \(max(1, microTokens / seq)) x \(seq) tokens, kept for backward"))
        return MemoryPlan(items: items, parameters: n, trainable: t)
    }
}
