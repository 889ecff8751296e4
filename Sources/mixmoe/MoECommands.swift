import ArgumentParser
import Foundation
import MixMoE

struct Upcycle: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Turn a dense model into a Mix-MoE model: slice chosen FFNs into n LM experts, fresh routers (stage 1).")

    @Option(help: "Dense model directory.")
    var model: String
    @Option(help: "Output model directory.")
    var out: String
    @Option(help: "Experts per group (must divide intermediate_size).")
    var experts: Int = 4
    @Option(help: "One MoE layer every N layers (layers N-1, 2N-1, ...); also sets the count for bottom/top/dense-bottom.")
    var every: Int = 4
    @Option(help: "Placement: uniform, bottom, top, dense-bottom, or a comma-separated list of 0-based layers.")
    var placement: String = "uniform"
    @Option(help: "Router features: fft ([h; Re(FFT(h))]), dct, random or none.")
    var routerFeatures: String = "fft"
    @Option(help: "Experts selected per token in each group.")
    var topK: Int = 1
    @Option(help: "Weight of a selected expert = gate-scale * p (default experts / top-k).")
    var gateScale: Double?
    @Option(help: "Stage-2 group combination: mean or sum.")
    var combine: String = "mean"
    @Option(help: "Load-balance loss weight lambda.")
    var lbCoef: Double = 0.01
    @Option(help: "Expert groups: 2 (Mix-MoE) or 1 (generic MoE baseline).")
    var groups: Int = 2
    @Option(help: "Seed of the router initialisation (and of the random transform).")
    var seed: UInt64 = 0

    func run() async throws {
        try await reportingErrors {
            let src = URL(fileURLWithPath: model)
            let dense = try DecoderModel.load(directory: src)
            let layers = try MixMoEConfig.placement(placement, layers: dense.config.numHiddenLayers, every: every)
            let cfg = MixMoEConfig(expertsPerGroup: experts, moeLayers: layers, routerFeatures: routerFeatures, topK: topK,
                                   gateScale: gateScale, combine: combine, lbCoef: lbCoef, stage: 1,
                                   hiddenSize: dense.config.hiddenSize, seed: seed,
                                   placement: placement, groups: groups)
            let m = try Upcycling.upcycle(dense, cfg)
            let dst = URL(fileURLWithPath: out)
            try m.save(directory: dst)
            try copyTokenizer(from: src, to: dst)
            printErr("wrote \(out): MoE layers \(layers), \(experts) experts per group, router \(routerFeatures), top-\(topK), \(m.store.count) parameters")
        }
    }
}

func copyTokenizer(from src: URL, to dst: URL) throws {
    let t = src.appendingPathComponent("tokenizer.json")
    if FileManager.default.fileExists(atPath: t.path) {
        try AtomicFile.write(Data(contentsOf: t), to: dst.appendingPathComponent("tokenizer.json"))
    }
}

/// Options shared by commands that train.
struct TrainOptions: ParsableArguments {
    @Option(help: "Optimiser steps.")
    var steps: Int = 100
    @Option(help: "Tokens per optimiser step (accumulated over micro-batches).")
    var batchTokens: Int = 16384
    @Option(help: "Tokens per sequence (stage 2: the longest prompt + translation kept).")
    var seq: Int = 256
    @Option(help: "Sequences per micro-batch (memory vs. speed).")
    var microBatch: Int = 8
    @Option(help: "Linear warm-up as a fraction of the steps.")
    var warmup: Double = 0.03
    @Option(help: "AdamW weight decay.")
    var weightDecay: Double = 0
    @Option(help: "Seed of the initial weights (pretrain) and of the data order.")
    var seed: UInt64 = 0
    @Option(help: "Print progress every N steps.")
    var logEvery: Int = 10
    @Option(help: "Write a checkpoint every N steps (and at the end); 0 = only at the end.")
    var checkpointEvery: Int = 0
    @Option(help: "Checkpoints to keep (newest).")
    var keepCheckpoints: Int = 3
    @Flag(help: "Continue from the newest good checkpoint in --out.")
    var resume = false
    @Flag(help: "With --resume: continue even if the run's settings differ from the checkpoint's.")
    var force = false
    @Option(help: ArgumentHelp("Sleep after each step (tests of interruption).", visibility: .hidden))
    var stepDelayMs: Int = 0

    func validate() throws {
        guard steps > 0, seq > 1, microBatch > 0, batchTokens >= seq, checkpointEvery >= 0, keepCheckpoints >= 1 else {
            throw ValidationError("need --steps > 0, --seq > 1, --micro-batch > 0, --batch-tokens >= --seq, --checkpoint-every >= 0, --keep-checkpoints >= 1")
        }
    }

    /// Settings that must match for a bit-identical resume.
    func runRecord(_ extra: [String: String], threads: Int) -> [String: String] {
        var r = extra
        r["steps"] = String(steps); r["batch_tokens"] = String(batchTokens); r["seq"] = String(seq)
        r["micro_batch"] = String(microBatch); r["warmup"] = String(warmup); r["weight_decay"] = String(weightDecay)
        r["seed"] = String(seed); r["threads"] = String(threads)
        return r
    }

    /// Runs the remaining steps with progress on stderr, checkpoints, resume and signal handling;
    /// returns the log. A signal writes a checkpoint and exits 130 (SIGINT) / 143 (SIGTERM).
    func runLoop(trainer: Trainer, source: BatchSource, out: URL, run: [String: String]) throws -> String {
        let loop = TrainingLoop(trainer: trainer, source: source, stepTokens: batchTokens, microTokens: microBatch * seq)
        var lastCheckpoint: URL? = nil
        if resume {
            let (url, st) = try Checkpoint.latestGood(out) { printErr("mixmoe: warning: \($0)") }
            let diffs = Checkpoint.differences(st.run, run)
            if !diffs.isEmpty {
                guard force else { throw CheckpointError.configMismatch(path: url.path, differences: diffs) }
                printErr("mixmoe: warning: resuming despite differences (--force):\n  " + diffs.joined(separator: "\n  "))
            }
            try Checkpoint.restore(url, state: st, into: trainer)
            source.seek(st.cursor)
            let log = (try? String(contentsOf: url.appendingPathComponent("train_log.jsonl"), encoding: .utf8)) ?? ""
            loop.restoreLog(log.split(separator: "\n").map(String.init))
            lastCheckpoint = url
            printErr("resuming from \(url.path) (step \(st.step), data cursor \(st.cursor))")
        }
        let signals = StopSignals()
        func checkpoint(_ step: Int) throws {
            lastCheckpoint = try Checkpoint.save(out: out, step: step, trainer: trainer, cursor: source.cursor, run: run,
                                                 log: loop.log, keep: keepCheckpoints)
        }
        let finished: Bool
        do {
            finished = try loop.run(steps: steps, report: { p in
                if p.step % logEvery == 0 || p.step == 1 || p.step == p.steps {
                    printErr(String(format: "step %d/%d  loss %.4f  aux %.4f  lr %.2e  |g| %.3f  %.0f tok/s  epoch %.2f  ETA %@",
                                    p.step, p.steps, p.stats.loss, p.stats.auxLoss, p.stats.lr, p.stats.gradNorm,
                                    p.tokensPerSecond, p.epochs, formatDuration(p.eta)))
                }
            }, afterStep: { step in
                if stepDelayMs > 0 { usleep(UInt32(stepDelayMs) * 1000) }
                if step == steps || (checkpointEvery > 0 && step % checkpointEvery == 0) || signals.received != nil {
                    try checkpoint(step)
                }
            }, shouldStop: { signals.received != nil })
        } catch let e as TrainingError {
            throw TrainingStopped(reason: e.localizedDescription, lastCheckpoint: lastCheckpoint?.path)
        }
        if !finished, let sig = signals.received {
            printErr("mixmoe: interrupted by \(sig == SIGINT ? "SIGINT" : "SIGTERM") after step \(trainer.step); checkpoint written to \(lastCheckpoint?.path ?? "?"). Resume with --resume.")
            throw ExitCode(128 + sig)
        }
        return loop.logText
    }
}

/// A run stopped by a non-finite loss or gradient: nothing poisoned is written.
struct TrainingStopped: LocalizedError {
    let reason: String
    let lastCheckpoint: String?
    var errorDescription: String? {
        reason + " Last good checkpoint: " + (lastCheckpoint ?? "none (use --checkpoint-every)") + "; no final model was written."
    }
}

/// SIGINT / SIGTERM set a flag that the training loop checks after each step.
final class StopSignals: @unchecked Sendable {
    private let lock = NSLock()
    private var sig: Int32? = nil
    private var sources: [DispatchSourceSignal] = []

    init() {
        for s in [SIGINT, SIGTERM] {
            signal(s, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: s, queue: .global())
            src.setEventHandler { [weak self] in
                guard let self else { return }
                self.lock.lock(); if self.sig == nil { self.sig = s }; self.lock.unlock()
                printErr("mixmoe: received \(s == SIGINT ? "SIGINT" : "SIGTERM"); finishing the current step and writing a checkpoint")
            }
            src.resume()
            sources.append(src)
        }
    }

    var received: Int32? { lock.lock(); defer { lock.unlock() }; return sig }
}

/// FNV-1a of files, for the run record (data identity).
func fileHashes(_ paths: [String]) throws -> String {
    try paths.map { p in
        let parts = p.split(separator: ",").map(String.init)  // Moses pairs
        return try parts.map { "\(URL(fileURLWithPath: $0).lastPathComponent):\(try Checkpoint.fnv1a(URL(fileURLWithPath: $0)))" }.joined(separator: ",")
    }.joined(separator: ";")
}

struct Train: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Mix-MoE training. Stage 1: LM experts + router on monolingual text. Stage 2: copy them into the MT group, freeze the LM side, train the MT side.")

    @Option(help: "Stage: 1 (monolingual text) or 2 (parallel corpora, ALMA prompt, loss on the target).")
    var stage: Int
    @Option(help: "Input model directory (upcycled model for stage 1, stage-1 output for stage 2).")
    var model: String
    @Option(help: "Output model directory.")
    var out: String
    @Option(help: "tokenizer.json (default: the model directory's).")
    var tokenizer: String?
    @Option(help: "Peak learning rate (default: the paper's 2e-4 in stage 1, 1e-5 in stage 2).")
    var lr: Double?
    @Option(help: "Load-balance weight lambda (default: the model's mix_moe.lb_coef).")
    var lbCoef: Double?
    @Option(help: "Stage 2: only these directions (comma-separated, e.g. de-en,en-de; default both directions of every corpus).")
    var directions: String?
    @OptionGroup var train: TrainOptions
    @OptionGroup var compute: ComputeOptions
    @Argument(help: "Stage 1: text files (one segment per line, or JSONL {\"text\": ...}). Stage 2: parallel corpora (TSV, A.xx,B.yy, ALMA JSON/JSONL).")
    var files: [String]

    func run() async throws {
        try compute.apply()
        try await reportingErrors {
            guard stage == 1 || stage == 2 else { throw ValidationError("--stage must be 1 or 2") }
            guard !files.isEmpty else { throw ValidationError("give at least one training file") }
            let src = URL(fileURLWithPath: model)
            var m = try DecoderModel.load(directory: src)
            guard let mc = m.config.mixMoE else {
                throw CLIError("\(model) is a dense model; run `mixmoe upcycle` first")
            }
            if stage == 2 {
                guard mc.stage == 1 else { throw CLIError("\(model) is already a stage-2 model; give the stage-1 output") }
                m = try Upcycling.beginStage2(m)
            } else if mc.stage != 1 {
                throw CLIError("\(model) is a stage-2 model; stage 1 starts from an upcycled model")
            }
            if let lbCoef {
                var c = m.config
                c.mixMoE!.lbCoef = lbCoef
                m = DecoderModel(config: c, store: m.store)
            }
            (stage == 1 ? FreezePlan.stage1 : FreezePlan.stage2).apply(to: m)
            let tok = try BPETokenizer.load(URL(fileURLWithPath: tokenizer ?? src.appendingPathComponent("tokenizer.json").path))
            try m.checkTokenizer(tok, file: tokenizer ?? src.appendingPathComponent("tokenizer.json").path)
            guard let eos = m.config.eosTokenIds.first.map(Int32.init) else {
                throw CLIError("\(model)/config.json has no eos_token_id; training needs one")
            }
            let data: BatchSource
            var probes: [(String, [TokenBatch])] = []
            if stage == 1 {
                let stream = try PackedDataset.tokenize(files: files.map { URL(fileURLWithPath: $0) }, tokenizer: tok, eos: eos)
                let packed = PackedDataset(tokens: stream, seq: train.seq, seed: train.seed)
                guard packed.windowCount > 0 else { throw DataError.empty(files.joined(separator: ", ")) }
                data = packed
                printErr("stage 1 data: \(stream.count) tokens in \(packed.windowCount) windows")
            } else {
                let bitexts = try files.map { try Corpus.readBitext($0) }
                let (exs, dropped) = MTDataset.build(bitexts: bitexts, directions: try parseDirections(directions), tokenizer: tok, eos: eos,
                                                     maxTokens: train.seq)
                guard !exs.isEmpty else { throw DataError.empty(files.joined(separator: ", ")) }
                data = MTDataset(examples: exs, seed: train.seed, pad: eos)
                let byDir = Dictionary(grouping: exs, by: { $0.direction.description })
                printErr("stage 2 data: \(exs.count) examples in \(byDir.count) directions (\(dropped) longer than --seq \(train.seq) dropped)")
                for (d, e) in byDir.sorted(by: { $0.key < $1.key }) { probes.append((d, [MTDataset.collate(Array(e.prefix(32)), pad: eos)])) }
            }
            let peak = lr ?? (stage == 1 ? 2e-4 : 1e-5)
            printErr("stage \(stage): \(m.store.trainableCount) of \(m.store.count) parameters trainable; lr \(peak)")
            let trainer = Trainer(model: m, schedule: CosineSchedule(peak: peak, totalSteps: train.steps, warmupFraction: train.warmup),
                                  weightDecay: Float(train.weightDecay))
            m.moe.collectStats = true
            m.moe.statsLabel = "stage\(stage)-train"
            let dst = URL(fileURLWithPath: out)
            let record = train.runRecord(["command": "train --stage \(stage)", "model": try Checkpoint.fnv1a(src.appendingPathComponent("model.safetensors")),
                                          "data": try fileHashes(files), "lr": String(peak), "lb_coef": String(m.config.mixMoE!.lbCoef),
                                          "directions": directions ?? "all"], threads: compute.threads)
            let log = try train.runLoop(trainer: trainer, source: data, out: dst, run: record)
            // expert use per direction (Fig. 2): a forward pass over up to 32 examples of each
            for (label, batches) in probes {
                m.moe.statsLabel = label
                _ = trainer.evaluate(batches)
            }
            try m.save(directory: dst)
            try copyTokenizer(from: src, to: dst)
            try AtomicFile.write(log, to: dst.appendingPathComponent("train_log.jsonl"))
            let stats = try JSONSerialization.data(withJSONObject: m.expertStatistics(), options: [.prettyPrinted, .sortedKeys])
            try AtomicFile.write(stats, to: dst.appendingPathComponent("expert_stats.json"))
            print(m.expertStatisticsTable(), terminator: "")
            printErr("wrote \(out)")
        }
    }
}
