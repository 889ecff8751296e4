import Foundation

/// The training methods compared in the paper (Table II) and its ablations.
public enum Method: String, Codable, Sendable, CaseIterable {
    case base  // no training
    case mixMoE = "mix-moe"  // upcycle, stage 1 (LM group, mono), stage 2 (MT group, parallel)
    case sft  // dense, full fine-tuning on parallel
    case ptSft = "pt-sft"  // dense, full fine-tuning on mono, then parallel
    case lora  // LoRA r=8 on all linear, parallel
    case llamaPro = "llama-pro"  // block expansion, new blocks on mono then parallel
    case moe  // one group, one stage on mono + parallel
    case moePtSft = "moe-pt-sft"  // one group, mono then parallel, all experts both stages
    case moePt = "moe-pt"  // one group, mono only (Table III)
    case moeSft = "moe-sft"  // one group, parallel only (Table III)
    case denseFFN = "dense-ffn"  // control: dense model, only the FFNs of the would-be MoE layers, parallel
}

/// Runs any method from one base model on shared data, reporting progress through `log`.
public final class MethodRunner: @unchecked Sendable {
    public let base: DecoderModel
    public let tokenizer: BPETokenizer
    public let monoStream: [Int32]
    public let examples: [MTExample]
    public var budget: Budget
    public var moe: MoEOptions
    public var log: (String) -> Void
    /// Held-out pairs for a dev-loss curve, evaluated every `evalEvery` steps of every stage (and
    /// at its start and end); 0 or no pairs: none.
    public var dev: DevLoss?
    public var evalEvery = 0
    /// The dev-loss points of every stage trained so far, in order.
    public private(set) var devCurve: [DevPoint] = []
    let eos: Int32

    public init(
        base: DecoderModel, tokenizer: BPETokenizer, monoFiles: [URL], parallel: [Bitext],
        budget: Budget, moe: MoEOptions = MoEOptions(), log: @escaping (String) -> Void = { _ in }
    ) throws {
        self.base = base; self.tokenizer = tokenizer; self.budget = budget; self.moe = moe; self.log = log
        guard let e = base.config.eosTokenIds.first else {
            throw ModelError.config(file: "config.json", field: "eos_token_id", expected: "an id (training needs EOS)")
        }
        eos = Int32(e)
        monoStream = try PackedDataset.tokenize(files: monoFiles, tokenizer: tokenizer, eos: eos)
        examples = MTDataset.build(bitexts: parallel, directions: nil, tokenizer: tokenizer, eos: eos, maxTokens: budget.shared.seq).examples
    }

    func mono(_ salt: UInt64) -> PackedDataset { PackedDataset(tokens: monoStream, seq: budget.shared.seq, seed: budget.seed &+ salt) }
    func mt(_ salt: UInt64) -> MTDataset { MTDataset(examples: examples, seed: budget.seed &+ salt, pad: eos) }

    /// A copy of the base model (methods never modify the base).
    func freshBase() -> DecoderModel { base.copy() }

    func mixConfig(groups: Int) throws -> MixMoEConfig { try moe.config(for: base.config, groups: groups, seed: budget.seed) }

    func train(_ m: DecoderModel, _ plan: FreezePlan, _ src: BatchSource, steps: Int, lr: Double, label: String) throws {
        plan.apply(to: m)
        try train(m, src, steps: steps, lr: lr, label: label)
    }

    /// Trains with whatever trainable flags `m` already has.
    func train(_ m: DecoderModel, _ src: BatchSource, steps: Int, lr: Double, label: String) throws {
        guard steps > 0 else { return }
        let run = TrainingRun(model: m, settings: budget.stage(steps: steps, lr: lr), source: src)
        var evalError: Error? = nil
        func evaluate(_ step: Int) {
            guard let dev, evalEvery > 0, evalError == nil else { return }
            do {
                let l = try dev.evaluate(m)
                devCurve.append(DevPoint(label: label, step: step, loss: l))
                log(String(format: "  %@ dev loss after %d steps: %.4f (%d pairs, %d target tokens)", label, step, l, dev.pairs, dev.targetTokens))
            } catch { evalError = error }
        }
        evaluate(0)
        run.progress = { p in
            if p.step == 1 || p.step % 50 == 0 || p.step == p.steps { self.log("  \(label) " + p.line) }
            if p.step % max(self.evalEvery, 1) == 0 || p.step == p.steps { evaluate(p.step) }
        }
        try run.run()
        if let evalError { throw evalError }
    }

    /// Trains `method` and returns the resulting model.
    public func run(_ method: Method) throws -> DecoderModel {
        let b = budget, total = b.stage1Steps + b.stage2Steps
        switch method {
        case .base:
            return freshBase()
        case .mixMoE:
            let m1 = try Upcycling.upcycle(freshBase(), try mixConfig(groups: 2))
            try train(m1, .stage1, mono(1), steps: b.stage1Steps, lr: b.lr1, label: "mix-moe stage 1")
            let m2 = try Upcycling.beginStage2(m1)
            try train(m2, .stage2, mt(2), steps: b.stage2Steps, lr: b.lr2, label: "mix-moe stage 2")
            return m2
        case .sft:
            let m = freshBase()
            try train(m, .full, mt(2), steps: total, lr: b.lr2, label: "sft")
            return m
        case .ptSft:
            let m = freshBase()
            try train(m, .full, mono(1), steps: b.stage1Steps, lr: b.lr1, label: "pt-sft pt")
            try train(m, .full, mt(2), steps: b.stage2Steps, lr: b.lr2, label: "pt-sft sft")
            return m
        case .lora:
            let m = try Baselines.addLoRA(freshBase(), seed: b.seed)
            try train(m, .lora, mt(2), steps: total, lr: b.lr2, label: "lora")
            return m
        case .llamaPro:
            let m = try Baselines.expandLlamaPro(freshBase(), every: moe.every)
            try train(m, .llamaPro, mono(1), steps: b.stage1Steps, lr: b.lr1, label: "llama-pro pt")
            try train(m, .llamaPro, mt(2), steps: b.stage2Steps, lr: b.lr2, label: "llama-pro sft")
            return m
        case .moe:
            let m = try Upcycling.upcycle(freshBase(), try mixConfig(groups: 1))
            let ratio = max(1, Int((Double(b.stage1Steps) / Double(max(1, b.stage2Steps))).rounded()))
            let src: BatchSource =
                b.stage1Steps >= b.stage2Steps
                ? MixedSource(mono(1), mt(2), ratioA: ratio) : MixedSource(mt(2), mono(1), ratioA: max(1, b.stage2Steps / max(1, b.stage1Steps)))
            try train(m, .moe, src, steps: total, lr: b.lr2, label: "moe")
            return m
        case .denseFFN:
            let m = freshBase()
            let layers = try moe.placement.layers(of: base.config.numHiddenLayers, every: moe.every)
            m.store.setTrainable { name in layers.contains { name.hasPrefix("model.layers.\($0).mlp.") } }
            try train(m, mt(2), steps: total, lr: b.lr2, label: "dense-ffn")
            return m
        case .moePt:
            let m = try Upcycling.upcycle(freshBase(), try mixConfig(groups: 1))
            try train(m, .moe, mono(1), steps: total, lr: b.lr1, label: "moe-pt")
            return m
        case .moeSft:
            let m = try Upcycling.upcycle(freshBase(), try mixConfig(groups: 1))
            try train(m, .moe, mt(2), steps: total, lr: b.lr2, label: "moe-sft")
            return m
        case .moePtSft:
            let m = try Upcycling.upcycle(freshBase(), try mixConfig(groups: 1))
            try train(m, .moe, mono(1), steps: b.stage1Steps, lr: b.lr1, label: "moe-pt-sft pt")
            try train(m, .moe, mt(2), steps: b.stage2Steps, lr: b.lr2, label: "moe-pt-sft sft")
            return m
        }
    }
}
