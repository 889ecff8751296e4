import ArgumentParser
import Foundation
import MixMoE
import MixMoECommandLine

struct Upcycle: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Turn a dense model into a Mix-MoE model: slice chosen FFNs into n LM experts, fresh routers (stage 1).")

    @Option(help: "Output model directory.") var out: String
    @OptionGroup var model: ModelOption
    @OptionGroup var moe: MoEOptionGroup
    @Option(help: "Expert groups: 2 (Mix-MoE) or 1 (generic MoE baseline).") var groups: Int = 2
    @Option(help: "Seed of the router initialisation (and of the random transform).") var seed: UInt64 = 0

    func run() async throws {
        try await reportingErrors {
            let src = model.url, dst = URL(fileURLWithPath: out)
            let m = try Upcycling.upcycle(directory: src) { try moe.options.config(for: $0, groups: groups, seed: seed) }
            let cfg = m.config.mixMoE!
            if model.dtype == .bf16 {  // written as BF16 (training widens them back exactly)
                m.store.holdFrozenMatrices(as: .bf16, trainable: { _ in false })
            }
            try m.save(directory: dst)
            try HFDirectory.copyTokenizer(from: src, to: dst)
            printErr(
                "wrote \(out): MoE layers \(cfg.moeLayers), \(cfg.expertsPerGroup) experts per group, router \(cfg.routerFeatures.rawValue), top-\(cfg.topK), \(m.store.count) parameters"
            )
        }
    }
}

struct Train: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Mix-MoE training. Stage 1: LM experts + router on monolingual text. Stage 2: copy them into the MT group, freeze the LM side, train the MT side.",
        discussion: "--model is the upcycled model for stage 1 and the stage-1 output for stage 2.")

    @Option(help: "Stage: 1 (monolingual text) or 2 (parallel corpora, ALMA prompt, loss on the target).") var stage: Int
    @OptionGroup var model: ModelOption
    @Option(help: "Output model directory.") var out: String
    @Option(help: "Load-balance weight lambda (default: the model's mix_moe.lb_coef).") var lbCoef: Double?
    @Option(help: "Stage 2: only these directions (comma-separated, e.g. de-en,en-de; default both directions of every corpus).") var directions: String?
    @OptionGroup var train: TrainingOptions
    @OptionGroup var run: RunOptions
    @OptionGroup var compute: ComputeOptions
    @Argument(help: "Stage 1: text files (one segment per line, or JSONL {\"text\": ...}). Stage 2: parallel corpora (TSV, A.xx,B.yy, ALMA JSON/JSONL).")
    var files: [String]

    func validate() throws {
        guard stage == 1 || stage == 2 else { throw ValidationError("--stage must be 1 or 2") }
        guard !files.isEmpty else { throw ValidationError("give at least one training file") }
    }

    func run() async throws {
        try await compute.run(distributed: true) {
            // the paper's learning rates: 2e-4 in stage 1, 1e-5 in stage 2
            let settings = try train.settings(defaultLR: stage == 1 ? 2e-4 : 1e-5)
            let src = model.url, dst = URL(fileURLWithPath: out)
            let planned = try Upcycling.stageConfig(directory: src, stage: stage, name: model.model)
            let freeze: FreezePlan = stage == 1 ? .stage1 : .stage2
            if try train.planMemory(config: planned, freeze: freeze, settings: settings, dtype: model.dtype) { return }
            let m = try Upcycling.prepare(directory: src, stage: stage, lbCoef: lbCoef, name: model.model, dtype: model.dtype)
            let tok = try m.loadTokenizer(directory: src, tokenizer: model.tokenizer)
            let data = try StageData.load(
                stage: stage, files: files, tokenizer: tok, model: m, seq: settings.seq, seed: settings.seed,
                directions: try Direction.parseList(directions))
            printErr(data.summary)
            printErr("stage \(stage): \(m.store.trainableCount) of \(m.store.count) parameters trainable; lr \(settings.lr)")
            m.moe.collectStats = true
            m.moe.statsLabel = "stage\(stage)-train"
            let record = [
                "command": "train --stage \(stage)", "model": try DecoderModel.weightsHash(directory: src),
                "data": try fileHashes(files), "lb_coef": String(m.config.mixMoE!.lbCoef), "directions": directions ?? "all",
                "threads": String(compute.threads),
            ]
            let training = TrainingRun(model: m, settings: settings, source: data.source, record: record)
            run.configure(training, out: dst)
            let log = try training.run()
            m.reduceExpertStatistics(training.collective)
            guard training.collective.isRoot else { return }  // rank 0 writes the model
            try data.recordExpertUse(training.trainer, maxTokens: settings.microTokens)
            try ModelDirectory(dst).writeTrainedModel(m, tokenizer: .modelDirectory(src), log: log, record: training.record)
            let enc = JSONEncoder(); enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            try AtomicFile.write(enc.encode(m.expertStatistics()), to: ModelDirectory(dst).expertStats)
            print(m.expertStatisticsTable(), terminator: "")
            printErr("wrote \(out)")
        }
    }
}

struct Finetune: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Dense full fine-tuning (the dense SFT baseline) on parallel corpora in ALMA's prompt, loss on the target: checkpointed, resumable (--resume), data-parallel under mpirun.",
        discussion:
            "The long-run counterpart of `baseline sft` (which trains in one process, without checkpoints): for a translator trained for hours across sessions. Default lr 2e-5 (ALMA's full-weight fine-tuning)."
    )

    @OptionGroup var model: ModelOption
    @Option(help: "Output model directory.") var out: String
    @Option(help: "Only these directions (comma-separated, e.g. de-en,en-de; default both directions of every corpus).") var directions: String?
    @Option(
        name: .customLong("exclude"), parsing: .singleValue,
        help: "A held-out corpus (repeatable; e.g. the dev and test splits): training pairs sharing a segment with it (same language, exact text) are dropped.")
    var exclude: [String] = []
    @Option(
        name: .customLong("dev"), parsing: .singleValue,
        help: "A dev corpus (repeatable) for --eval-every: the first --dev-pairs pairs of each direction.")
    var dev: [String] = []
    @Option(help: "Evaluate the loss on the --dev pairs every N steps (and at the end): OUT/dev_loss.json, and the best step's model in OUT/best/. 0: never.")
    var evalEvery = 0
    @Option(help: "Dev pairs per direction for --eval-every.") var devPairs = 100
    @Option(help: "Examples per translation pair: both (one per direction) or one (a direction drawn per pair from --seed: an epoch sees every pair once).")
    var pairDirections: PairDirections = .both
    @OptionGroup var train: TrainingOptions
    @OptionGroup var run: RunOptions
    @OptionGroup var compute: ComputeOptions
    @Argument(help: "Parallel corpora (TSV, A.xx,B.yy, ALMA JSON/JSONL).") var files: [String]

    func validate() throws {
        guard !files.isEmpty else { throw ValidationError("give at least one training file") }
        guard evalEvery >= 0, devPairs >= 1 else { throw ValidationError("--eval-every must be at least 0 and --dev-pairs at least 1") }
        guard evalEvery == 0 || !dev.isEmpty else { throw ValidationError("--eval-every needs --dev FILE (a dev corpus)") }
    }

    func run() async throws {
        try await compute.run(distributed: true) {
            let settings = try train.settings(defaultLR: 2e-5)
            let src = model.url, dst = URL(fileURLWithPath: out)
            let config = try ModelConfig.load(ModelDirectory(src).config)
            if try train.planMemory(config: config, freeze: .full, settings: settings, dtype: model.dtype) { return }
            let m = try DecoderModel.load(directory: src, dtype: model.dtype, trainable: { _ in true })
            FreezePlan.full.apply(to: m)
            let tok = try m.loadTokenizer(directory: src, tokenizer: model.tokenizer)
            let data = try StageData.load(
                stage: 2, files: files, tokenizer: tok, model: m, seq: settings.seq, seed: settings.seed,
                directions: try Direction.parseList(directions), exclude: exclude, perPair: pairDirections)
            printErr(data.summary.replacingOccurrences(of: "stage 2 data", with: "fine-tuning data"))
            printErr("finetune: \(m.store.trainableCount) parameters trainable; lr \(settings.lr)")
            var record = [
                "command": "finetune", "model": try DecoderModel.weightsHash(directory: src), "data": try fileHashes(files),
                "directions": directions ?? "all", "pair_directions": pairDirections.rawValue, "threads": String(compute.threads),
            ]
            if !exclude.isEmpty { record["exclude"] = try fileHashes(exclude) }
            let training = TrainingRun(model: m, settings: settings, source: data.source, record: record)
            run.configure(training, out: dst)
            if evalEvery > 0 {
                let eos = try m.config.trainingEOS()
                let devSet = DevLoss.build(
                    bitexts: try dev.map { try Corpus.readBitext($0) }, perDirection: devPairs, tokenizer: tok, eos: eos, maxTokens: settings.seq)
                let monitor = DevLossMonitor(dev: devSet, every: evalEvery, directory: dst, label: "finetune") { model, dir in
                    try model.save(directory: dir)
                    try HFDirectory.copyTokenizer(from: src, to: dir)
                }
                monitor.observe(training, model: m, resumed: run.resume) { printErr($0) }
            }
            let log = try training.run()
            guard training.collective.isRoot else { return }  // rank 0 writes the model
            try ModelDirectory(dst).writeTrainedModel(m, tokenizer: .modelDirectory(src), log: log, record: training.record)
            printErr("wrote \(out)")
        }
    }
}
