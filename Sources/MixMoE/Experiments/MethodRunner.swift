import Foundation

/// Runs any method from one base model on shared data, reporting progress through `log`.
public final class MethodRunner: @unchecked Sendable {
    public let base: DecoderModel
    public let tokenizer: BPETokenizer
    public let monoStream: [Int32]
    public let examples: [MTExample]
    public var budget: Budget
    public var moe: MoEOptions
    /// MoE-LPR's settings (method `moe-lpr`).
    public var lpr = MoELPRRecipe()
    /// LLaMA-MoE v2's settings (method `llama-moe-v2`).
    public var llamaMoEv2 = LlamaMoEv2Recipe()
    public let monoFiles: [URL]
    public var log: (String) -> Void
    /// Held-out pairs for a dev-loss curve, evaluated every `evalEvery` steps of every stage (and
    /// at its start and end); 0 or no pairs: none.
    public var dev: DevLoss?
    public var evalEvery = 0
    /// Parameters trained by the last ``run(_:)``, by name (the union over its stages).
    public private(set) var trained: [String: Int] = [:]
    /// The dev-loss points of every stage trained so far, in order.
    public private(set) var devCurve: [DevPoint] = []
    let eos: Int32

    public init(
        base: DecoderModel, tokenizer: BPETokenizer, monoFiles: [URL], parallel: [Bitext],
        budget: Budget, moe: MoEOptions = MoEOptions(), log: @escaping (String) -> Void = { _ in }
    ) throws {
        self.base = base; self.tokenizer = tokenizer; self.budget = budget; self.moe = moe; self.log = log
        self.monoFiles = monoFiles
        eos = try base.config.trainingEOS()
        monoStream = try PackedDataset.tokenize(files: monoFiles, tokenizer: tokenizer, eos: eos)
        examples = MTDataset.build(bitexts: parallel, directions: nil, tokenizer: tokenizer, eos: eos, maxTokens: budget.shared.seq).examples
    }

    func mono(_ salt: UInt64) -> PackedDataset { PackedDataset(tokens: monoStream, seq: budget.shared.seq, seed: budget.seed &+ salt) }
    func mt(_ salt: UInt64) -> MTDataset { MTDataset(examples: examples, seed: budget.seed &+ salt, pad: eos) }

    /// The language of a monolingual file: `L.txt` (a corpus folder) or `mono.L.txt` (a capped copy).
    static func language(of url: URL) -> String {
        let stem = url.deletingPathExtension().lastPathComponent
        return stem.hasPrefix("mono.") ? String(stem.dropFirst(5)) : stem
    }

    /// Packed windows of the monolingual files whose language is (or is not) among `languages`.
    func mono(_ salt: UInt64, languages: [String], include: Bool) throws -> PackedDataset {
        let files = monoFiles.filter { languages.contains(Self.language(of: $0)) == include }
        guard !files.isEmpty else {
            throw SettingsError.invalid(
                option: "monolingual data", expected: "a mono file \(include ? "in" : "outside") \(languages.joined(separator: ", ")) for MoE-LPR")
        }
        return PackedDataset(
            tokens: try PackedDataset.tokenize(files: files, tokenizer: tokenizer, eos: eos), seq: budget.shared.seq, seed: budget.seed &+ salt)
    }

    /// MoE-LPR's model for this runner's base, MoE layers and seed (``MoELPRRecipe/config(for:every:placement:seed:)``).
    public func moeLPRConfig() throws -> MixMoEConfig {
        try lpr.config(for: base.config, every: moe.every, placement: moe.placement, seed: budget.seed)
    }

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
        for e in m.store.entries where e.trainable { trained[e.name] = e.count }
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

    /// Mix-MoE's stage 1 alone: the upcycled model after `stage1Steps` on monolingual text.
    public func mixMoEStage1() throws -> DecoderModel {
        let m1 = try Upcycling.upcycle(freshBase(), try mixConfig(groups: 2))
        try train(m1, .stage1, mono(1), steps: budget.stage1Steps, lr: budget.lr1, label: "mix-moe stage 1")
        return m1
    }

    /// Mix-MoE's stage 2 from a stage-1 model (left unchanged), on the parallel examples whose
    /// direction involves one of `languages` (nil: all).
    public func mixMoEStage2(from m1: DecoderModel, languages: [String]? = nil) throws -> DecoderModel {
        let m2 = try Upcycling.beginStage2(m1)
        var src = mt(2)
        if let languages {
            let subset = examples.filter { languages.contains($0.direction.src) || languages.contains($0.direction.tgt) }
            guard !subset.isEmpty else {
                throw SettingsError.invalid(option: "--pairs", expected: "languages with parallel training data (none for \(languages))")
            }
            src = MTDataset(examples: subset, seed: budget.seed &+ 2, pad: eos)
        }
        try train(m2, .stage2, src, steps: budget.stage2Steps, lr: budget.lr2, label: "mix-moe stage 2")
        return m2
    }

    /// Trains `method` and returns the resulting model.
    public func run(_ method: Method) throws -> DecoderModel {
        let b = budget, total = b.stage1Steps + b.stage2Steps
        trained = [:]
        switch method {
        case .base:
            return freshBase()
        case .mixMoE:
            return try mixMoEStage2(from: try mixMoEStage1())
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
        case .moeLPR:
            let m = try Upcycling.upcycle(freshBase(), try moeLPRConfig())
            // stage 1, post-pretraining: the new experts and the router on the new languages' text...
            try train(
                m, .moeLPRExperts, try mono(1, languages: lpr.originalLanguages, include: false), steps: b.stage1Steps, lr: b.lr1,
                label: "moe-lpr stage 1")
            // ...and on the parallel data, the new task (docs/DESIGN.md, "MoE-LPR")
            let lprSteps = lpr.lprSteps(b.stage2Steps)
            try train(m, .moeLPRExperts, mt(2), steps: b.stage2Steps - lprSteps, lr: b.lr2, label: "moe-lpr stage 1 (parallel)")
            // stage 2: the routers alone, LM loss + LPR loss (no load balance), on a replay of the
            // original languages' text (tagged for the LPR loss) interleaved with parallel examples
            var c = m.config
            c.mixMoE!.lbCoef = 0
            c.mixMoE!.lprCoef = lpr.lprCoef
            let m2 = DecoderModel(config: c, store: m.store)
            let replay = MixedSource(LPRTaggedSource(try mono(3, languages: lpr.originalLanguages, include: true)), mt(4))
            try train(m2, .routers, replay, steps: lprSteps, lr: b.lr2, label: "moe-lpr stage 2 (LPR)")
            return m2
        case .llamaMoEv2:
            let m = try llamaMoEv2.model(from: freshBase(), seed: b.seed)
            try train(m, .llamaMoEv2, mono(1), steps: b.stage1Steps, lr: b.lr1, label: "llama-moe-v2 pt")
            try train(m, .llamaMoEv2, mt(2), steps: b.stage2Steps, lr: b.lr2, label: "llama-moe-v2 sft")
            return m
        case .moePtSft:
            let m = try Upcycling.upcycle(freshBase(), try mixConfig(groups: 1))
            try train(m, .moe, mono(1), steps: b.stage1Steps, lr: b.lr1, label: "moe-pt-sft pt")
            try train(m, .moe, mt(2), steps: b.stage2Steps, lr: b.lr2, label: "moe-pt-sft sft")
            return m
        }
    }
}
