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
            let settings = try train.settings(defaultLR: StageTrainingJob.defaultLearningRate(stage: stage))
            var job = StageTrainingJob(
                stage: stage, model: model.model, out: URL(fileURLWithPath: out), files: files, settings: settings, threads: compute.threads)
            (job.tokenizer, job.dtype, job.lbCoef, job.directions, job.log) = (model.tokenizer, model.dtype, lbCoef, directions, { printErr($0) })
            let table = try job.run(plan: { try train.planMemory(config: $0, freeze: $1, settings: settings, dtype: model.dtype) }) {
                run.configure($0, out: job.out)
            }
            print(table, terminator: "")
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
            let settings = try train.settings(defaultLR: FinetuneJob.defaultLearningRate)
            var job = FinetuneJob(model: model.model, out: URL(fileURLWithPath: out), files: files, settings: settings, threads: compute.threads)
            (job.tokenizer, job.dtype, job.directions, job.exclude, job.perPair) = (model.tokenizer, model.dtype, directions, exclude, pairDirections)
            (job.dev, job.evalEvery, job.devPairs, job.resuming, job.log) = (dev, evalEvery, devPairs, run.resume, { printErr($0) })
            try job.run(plan: { try train.planMemory(config: $0, freeze: .full, settings: settings, dtype: model.dtype) }) {
                run.configure($0, out: job.out)
            }
        }
    }
}
