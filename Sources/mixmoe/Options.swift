import ArgumentParser
import Foundation
import MixMoE
import MixMoECommandLine

// Option groups shared by the commands: a flag means the same thing, with the same default,
// wherever it appears. Defaults come from the library's settings types.

/// Help of every `--config` option.
let namedConfigHelp = "Named config (\(ModelConfig.namedConfigs.map(\.name).joined(separator: ", "))) or a config.json path."

/// Batch and optimiser options every training command shares. Unset options keep the command's
/// preset (`TrainingSettings()` for `pretrain` and `train`, `Budget.experiments` / `Budget.demo`).
struct BatchOptions: ParsableArguments {
    @Option(help: "Tokens per optimiser step, accumulated over micro-batches (default 8192).") var batchTokens: Int?
    @Option(help: "Tokens per micro-batch: memory against speed; the result does not depend on it (default 4096).") var microTokens: Int?
    @Option(help: "Tokens per sequence: packed text windows; translation: the longest prompt + translation kept (default 128).") var seq: Int?
    @Option(help: "Linear warm-up as a fraction of the steps (default 0.03).") var warmup: Double?
    @Option(help: "AdamW weight decay (default 0).") var weightDecay: Double?

    func apply(to s: inout TrainingSettings) {
        s.batchTokens = batchTokens ?? s.batchTokens; s.microTokens = microTokens ?? s.microTokens; s.seq = seq ?? s.seq
        s.warmup = warmup ?? s.warmup; s.weightDecay = weightDecay ?? s.weightDecay
    }
}

/// One training stage (`pretrain`, `train`).
struct TrainingOptions: ParsableArguments {
    @Option(help: "Optimiser steps.") var steps: Int = TrainingSettings().steps
    @Option(help: "Peak learning rate (cosine schedule with linear warm-up). Default: the command's.") var lr: Double?
    @Option(help: "Seed of the data order (and of fresh weights).") var seed: UInt64 = 0
    @Flag(help: "Under mpirun: shard the Adam moments over the ranks (ZeRO-1); the same training with less memory per rank.")
    var zero1 = false
    @Flag(help: "Print the memory plan (weights, gradients, optimiser state, activations) and exit before allocating anything.")
    var dryRun = false
    @OptionGroup var batch: BatchOptions

    func settings(defaultLR: Double) throws -> TrainingSettings {
        var s = TrainingSettings(steps: steps, lr: lr ?? defaultLR, seed: seed)
        s.shardOptimizer = zero1
        batch.apply(to: &s)
        try s.validate()
        return s
    }

    /// The memory plan of training `config` with `freeze`: printed with --dry-run (then true: stop
    /// here); otherwise a plan larger than the available memory is refused before the model loads.
    func planMemory(config: ModelConfig, freeze: FreezePlan, settings: TrainingSettings, dtype: DType = .f32) throws -> Bool {
        let plan = MemoryPlan.training(
            config: config, freeze: freeze, microTokens: settings.microTokens, seq: settings.seq,
            ranks: Distributed.world.size, zero1: settings.shardOptimizer, dtype: dtype)
        if dryRun {
            if Distributed.world.isRoot {
                print(plan.report("memory plan per process"), terminator: "")
            }
            return true
        }
        try plan.check(
            hint:
                "lower --micro-tokens (activations), shard the optimiser over more processes (mpirun with --zero1), or free memory; --dry-run prints the plan.")
        return false
    }
}

/// Checkpoints, resume and progress of a training command.
struct RunOptions: ParsableArguments {
    @Option(help: "Print progress every N steps.") var logEvery: Int = 10
    @Option(help: "Write a checkpoint every N steps (and at the end); 0 = only at the end.") var checkpointEvery: Int = 0
    @Option(help: "Checkpoints to keep (newest).") var keepCheckpoints: Int = 3
    @Flag(help: "Continue from the newest good checkpoint in --out.") var resume = false
    @Flag(help: "With --resume: continue even if the run's settings differ from the checkpoint's.") var force = false
    @Option(help: ArgumentHelp("Sleep after each step (tests of interruption).", visibility: .hidden)) var stepDelayMs: Int = 0
    @Option(help: ArgumentHelp("Write each rank's first reduced gradients and final weights here (tests).", visibility: .hidden))
    var debugDump: String?

    func validate() throws {
        guard logEvery >= 1, checkpointEvery >= 0, keepCheckpoints >= 1 else {
            throw ValidationError("need --log-every >= 1, --checkpoint-every >= 0, --keep-checkpoints >= 1")
        }
    }

    /// Configures `run` to checkpoint into `out`, handle signals and print progress.
    func configure(_ run: TrainingRun, out: URL) {
        run.checkpoints = CheckpointPolicy(directory: out, every: checkpointEvery, keep: keepCheckpoints, resume: resume, force: force)
        run.handleSignals = true
        run.stepDelayMs = stepDelayMs
        run.debugDump = debugDump.map { URL(fileURLWithPath: $0) }
        run.note = { printErr("mixmoe: \($0)") }
        let every = logEvery
        run.progress = { p in if p.step % every == 0 || p.step == 1 || p.step == p.steps { printErr(p.line) } }
    }
}

/// The two-stage budget of a comparison (`experiment`, `baseline`, `demo`).
struct BudgetOptions: ParsableArguments {
    @Option(help: "Steps of the monolingual stage (one-stage methods get both budgets).") var stage1Steps: Int?
    @Option(help: "Steps of the parallel stage.") var stage2Steps: Int?
    @Option(help: "Peak learning rate of the monolingual stage.") var lr1: Double?
    @Option(help: "Peak learning rate of the parallel stage.") var lr2: Double?
    @OptionGroup var batch: BatchOptions

    func budget(_ preset: Budget, seed: UInt64 = 0) throws -> Budget {
        var b = preset
        b.stage1Steps = stage1Steps ?? b.stage1Steps; b.stage2Steps = stage2Steps ?? b.stage2Steps
        b.lr1 = lr1 ?? b.lr1; b.lr2 = lr2 ?? b.lr2
        batch.apply(to: &b.shared)
        b.seed = seed
        try b.validate()
        return b
    }
}

/// Base model and corpus of a comparison.
struct CorpusOptions: ParsableArguments {
    @Option(help: "Base model directory (with tokenizer.json).") var model: String = "models/base"
    @Option(help: "Corpus folder with mono/L.txt and parallel/{train,dev,test}.L-en.tsv (the shipped subset, or a full corpus).") var data: String = "data/demo"
    @Option(help: "Test segments per direction.") var testSegments: Int = 100
    @Option(help: "Use at most this many bytes of each monolingual file.") var monoBytes: Int = 2_000_000

    var corpus: CorpusFolder { CorpusFolder(URL(fileURLWithPath: data)) }

    func baseModel() throws -> (DecoderModel, BPETokenizer) {
        let dir = URL(fileURLWithPath: model)
        guard FileManager.default.fileExists(atPath: ModelDirectory(dir).weights.path) else {
            throw ModelError.missingFile(
                ModelDirectory(dir).weights.path,
                hint: "pretrain a base model with scripts/runs/pretrain_base.sh, or pass --model DIR")
        }
        return try DecoderModel.loadWithTokenizer(directory: dir)
    }
}

/// MoE settings (`upcycle`, `baseline`, `bench train`); defaults are ``MoEOptions``'s.
struct MoEOptionGroup: ParsableArguments {
    private static let d = MoEOptions()
    @Option(help: "Experts per group (must divide intermediate_size).") var experts: Int = d.experts
    @Option(help: "One MoE layer every N layers (layers N-1, 2N-1, ...); also sets the count for bottom/top/dense-bottom.") var every: Int = d.every
    @Option(help: "Placement: uniform, bottom, top, dense-bottom, or a comma-separated list of 0-based layers.") var placement: Placement = d.placement
    @Option(help: "Router features: fft ([h; Re(FFT(h))]), dct, random or none.") var routerFeatures: RouterFeatures = d.routerFeatures
    @Option(help: "Experts selected per token in each group.") var topK: Int = d.topK
    @Option(help: "Weight of a selected expert = gate-scale * p (default experts / top-k).") var gateScale: Double?
    @Option(help: "Stage-2 group combination: mean or sum.") var combine: GroupCombine = d.combine
    @Option(help: "Load-balance loss weight lambda.") var lbCoef: Double = d.lbCoef
    @Option(help: "Experts from the dense FFN: slice (the paper's: d_ff / n slices) or copy (full copies, renormalised weights; starts as the dense FFN).")
    var upcycle: UpcycleMode = d.upcycle

    var options: MoEOptions {
        var o = MoEOptions()
        o.experts = experts; o.every = every; o.placement = placement; o.routerFeatures = routerFeatures
        o.topK = topK; o.gateScale = gateScale; o.combine = combine; o.lbCoef = lbCoef; o.upcycle = upcycle
        return o
    }
}

/// The search: beam, length penalty, batch, length cap (translate, evaluate, generate).
struct SearchOptions: ParsableArguments {
    @Option(help: "Beam size (1 = greedy). The search follows CTranslate2's rule (docs/DESIGN.md).") var beam: Int = 1
    @Option(help: "Beam length penalty alpha: score = log p / length^alpha (0: stop once the best beam ends).")
    var lengthPenalty: Double = 1
    @Option(help: "Segments decoded together (continuous batching; with --beam, each with its beams).") var batch: Int = 8
    @Option(help: "At most this many generated tokens per segment, whatever its length.") var maxNewTokens: Int = Translator.defaultCap

    func validate() throws {
        guard beam >= 1, batch >= 1, maxNewTokens >= 1 else { throw ValidationError("--beam, --batch and --max-new-tokens must be at least 1") }
    }
}

/// Options shared by commands that translate.
struct DecodeOptions: ParsableArguments {
    @OptionGroup var search: SearchOptions
    @Option(help: "At most this many generated tokens per source token (plus 10).") var maxRatio: Double = 2
    var beam: Int { search.beam }
    var batch: Int { search.batch }
    var maxNewTokens: Int { search.maxNewTokens }

    /// The memory plan of translating `sources` in direction `d` with these options, from
    /// config.json and the tokenizer only (no weights are read).
    func memoryPlan<D>(_ model: ModelChoice<D>, sources: [String], _ d: Direction) throws -> MemoryPlan {
        let config = try ModelConfig.load(ModelDirectory(model.url).config)
        let tok = try BPETokenizer.load(URL(fileURLWithPath: model.tokenizer ?? ModelDirectory(model.url).tokenizer.path))
        return Translator.memoryPlan(
            sources, d, config: config, tokenizer: tok, batchSize: batch, beams: beam, maxRatio: maxRatio, maxNewTokens: maxNewTokens,
            dtype: model.dtype)
    }

    func translator<D>(_ model: ModelChoice<D>) throws -> Translator {
        try search.validate()
        let (m, tok) = try model.loadWithTokenizer()
        let t = Translator(model: m, tokenizer: tok)
        t.beams = beam; t.lengthPenalty = search.lengthPenalty; t.batchSize = batch; t.maxRatio = maxRatio; t.maxCap = maxNewTokens
        return t
    }
}
