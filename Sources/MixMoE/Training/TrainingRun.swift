import Foundation

/// Where and how often a run writes checkpoints, and whether it continues from one.
public struct CheckpointPolicy: Sendable {
    /// The run's output folder; checkpoints go to `directory/checkpoints/step-NNNNNNNN/`.
    public var directory: URL
    /// Write a checkpoint every N steps (and always at the end and on a signal); 0 = only those.
    public var every: Int
    /// Newest checkpoints kept.
    public var keep: Int
    /// Continue from the newest checkpoint that verifies.
    public var resume: Bool
    /// Resume even when the run record differs from the checkpoint's (differences are printed).
    public var force: Bool

    public init(directory: URL, every: Int = 0, keep: Int = 3, resume: Bool = false, force: Bool = false) {
        self.directory = directory; self.every = every; self.keep = keep; self.resume = resume; self.force = force
    }
}

/// A run stopped by a non-finite loss or gradient: nothing poisoned is written.
public struct TrainingStopped: LocalizedError {
    public let reason: String
    public let lastCheckpoint: String?
    public var errorDescription: String? {
        reason + " Last good checkpoint: " + (lastCheckpoint ?? "none (use --checkpoint-every)") + "; no final model was written."
    }
}

/// A run ended early by SIGINT or SIGTERM after writing a checkpoint; the CLI exits 128 + signal.
public struct TrainingInterrupted: LocalizedError {
    public let signal: Int32
    public let step: Int
    public let checkpoint: String?
    public var errorDescription: String? {
        "interrupted by \(signal == SIGINT ? "SIGINT" : "SIGTERM") after step \(step); checkpoint written to \(checkpoint ?? "?"). Resume with --resume."
    }
}

/// One training run: the loop over a batch source (``TrainingLoop``) plus everything a long run
/// needs around it: checkpoints, resume (bit-identical: weights, Adam moments, step and data
/// cursor), SIGINT/SIGTERM handling (finish the step, checkpoint, stop) and progress. Every
/// command that trains uses it, so resume and signals behave the same everywhere.
public final class TrainingRun {
    public let trainer: Trainer
    public let source: BatchSource
    public let settings: TrainingSettings
    /// Settings that must match for a resume (the settings, data identity, thread count, ...).
    public var record: [String: String]
    /// nil: no checkpoints (the experiments' short runs).
    public var checkpoints: CheckpointPolicy?
    /// Install SIGINT/SIGTERM handlers for the duration of `run()`.
    public var handleSignals = false
    /// Called after every step.
    public var progress: (LoopProgress) -> Void = { _ in }
    /// Messages about resuming and checkpoints.
    public var note: (String) -> Void = { _ in }
    /// Sleep after each step (tests of interruption).
    public var stepDelayMs = 0
    /// Tests of data parallelism: every rank writes `grads-rank-R.safetensors` (its trainable
    /// gradients after the first step's reduction, before clipping) and, at the end,
    /// `weights-rank-R.safetensors` (all its weights) into this folder.
    public var debugDump: URL?

    /// The ranks of the run: `Distributed.world` unless given (only rank 0 writes checkpoints and
    /// reports progress).
    public var collective: Collective { trainer.collective }

    public init(
        model: DecoderModel, settings: TrainingSettings, source: BatchSource, record: [String: String] = [:],
        collective: Collective = Distributed.world
    ) {
        self.settings = settings
        self.source = source
        trainer = settings.trainer(for: model, collective: collective)
        self.record = record.merging(settings.record) { a, _ in a }
        if collective.size > 1 { self.record["world_size"] = String(collective.size) }
    }

    /// Rank 0's resume: finds and restores the newest good checkpoint, checks the run record.
    private func resumeOnRoot(_ cp: CheckpointPolicy, loop: TrainingLoop) throws -> URL {
        let (url, st) = try Checkpoint.latestGood(cp.directory) { self.note("warning: \($0)") }
        // The world size may change when the global batch does not (batch_tokens is in the
        // record): the ranks then run the same steps on the same micro-batches.
        let ranks = (st.run["world_size"] ?? "1", record["world_size"] ?? "1")
        let diffs = Checkpoint.differences(st.run.filter { $0.key != "world_size" }, record.filter { $0.key != "world_size" })
        if !diffs.isEmpty {
            guard cp.force else { throw CheckpointError.configMismatch(path: url.path, differences: diffs) }
            note("warning: resuming despite differences (--force):\n  " + diffs.joined(separator: "\n  "))
        }
        if ranks.0 != ranks.1 {
            note("resuming with \(ranks.1) process(es) a run checkpointed with \(ranks.0): same global batch, same steps")
        }
        try Checkpoint.restore(url, state: st, into: trainer)
        source.seek(st.cursor)
        let log = (try? String(contentsOf: ModelDirectory(url).trainLog, encoding: .utf8)) ?? ""
        loop.restoreLog(log.split(separator: "\n").map(String.init))
        note("resuming from \(url.path) (step \(st.step), data cursor \(st.cursor))")
        return url
    }

    /// Every rank must run the same command on the same data: compares the run records.
    private func checkSameRun() throws {
        guard collective.size > 1 else { return }
        let mine = try sortedJSON(record)
        let root = collective.broadcast(mine)
        guard collective.any(root != mine) else { return }
        guard root != mine else { throw DistributedError.dataDiffers(rank: 0, detail: "another rank's run record differs") }
        let theirs = (try? JSONDecoder().decode([String: String].self, from: Data(root.utf8))) ?? [:]
        throw DistributedError.dataDiffers(rank: collective.rank, detail: Checkpoint.differences(theirs, record).joined(separator: "; "))
    }

    /// Runs the remaining steps and returns the log (one JSON line per step, resumed lines included).
    @discardableResult
    public func run() throws -> TrainingLog {
        let loop = TrainingLoop(trainer: trainer, source: source, stepTokens: settings.batchTokens, microTokens: settings.microTokens)
        var lastCheckpoint: URL? = nil
        let world = collective
        if !world.isRoot { note = { _ in } }
        try checkSameRun()
        // Rank 0 resumes; the others take its weights, moments, step and data cursor.
        if let cp = checkpoints, cp.resume, world.isRoot { lastCheckpoint = try resumeOnRoot(cp, loop: loop) }
        trainer.synchronizeFromRoot()
        if world.size > 1 {
            if let c = Int(world.broadcast(String(source.cursor))), c != source.cursor { source.seek(c) }
        }
        if let dir = debugDump {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let first = trainer.step + 1
            trainer.afterReduce = { [trainer] store, grads in
                guard trainer.step + 1 == first else { return }
                try Self.dump(store, values: grads, trainableOnly: true, to: dir.appendingPathComponent("grads-rank-\(world.rank).safetensors"))
            }
        }
        defer { trainer.afterReduce = nil }
        let signals = handleSignals ? StopSignals(note: note) : nil
        defer { signals?.uninstall() }
        let steps = settings.steps
        func checkpoint(_ step: Int) throws {
            guard let cp = checkpoints else { return }
            // every rank takes part in gathering sharded moments; rank 0 writes
            guard let moments = trainer.momentsForCheckpoint() else { return }
            lastCheckpoint = try Checkpoint.save(
                out: cp.directory, step: step, trainer: trainer, moments: moments, cursor: source.cursor, run: record,
                log: loop.log, keep: cp.keep)
        }
        // A signal on any rank stops every rank after the same step.
        var stopping = false
        let finished: Bool
        do {
            finished = try loop.run(
                steps: steps, report: world.isRoot ? progress : { _ in },
                afterStep: { step in
                    if self.stepDelayMs > 0 { usleep(UInt32(self.stepDelayMs) * 1000) }
                    stopping = world.any(signals?.received != nil)
                    let every = self.checkpoints?.every ?? 0
                    if step == steps || (every > 0 && step % every == 0) || stopping { try checkpoint(step) }
                }, shouldStop: { stopping })
        } catch let e as TrainingError {
            throw TrainingStopped(reason: e.localizedDescription, lastCheckpoint: lastCheckpoint?.path)
        }
        if let dir = debugDump {
            let store = trainer.model.store
            try SafetensorsFile.write(
                dir.appendingPathComponent("weights-rank-\(world.rank).safetensors"),
                stored: store.entries.indices.map { (name: store.entries[$0].name, shape: store.entries[$0].shape, values: store.operand($0)) })
        }
        if !finished {
            throw TrainingInterrupted(signal: signals?.received ?? SIGTERM, step: trainer.step, checkpoint: lastCheckpoint?.path)
        }
        return TrainingLog(lines: loop.log)
    }
}

extension TrainingRun {
    /// Writes `values` (the store's layout: gradients) as safetensors, one tensor per view.
    static func dump(_ store: ParameterStore, values base: UnsafePointer<Float>, trainableOnly: Bool, to url: URL) throws {
        let tensors = store.entries.filter { !trainableOnly || $0.trainable }.map { e in (name: e.name, shape: e.shape, values: base + e.offset) }
        try SafetensorsFile.write(url, tensors: tensors, metadata: [:])
    }
}

/// A run's log: one JSON object per optimiser step
/// (`step, loss, aux_loss, lr, grad_norm, tokens, elapsed_s`), as written to `train_log.jsonl`.
public struct TrainingLog: Sendable {
    public var lines: [String]
    public init(lines: [String]) { self.lines = lines }
    public var text: String { lines.isEmpty ? "" : lines.joined(separator: "\n") + "\n" }

    /// One parsed entry.
    public struct Entry: Codable, Sendable {
        public var step: Int
        public var loss: Double
        public var tokens: Int?
        public var elapsed: Double?
        enum CodingKeys: String, CodingKey { case step, loss, tokens, elapsed = "elapsed_s" }
    }

    /// Parses a log file (blank lines skipped; a malformed line is an error naming it).
    public static func read(_ url: URL) throws -> [Entry] {
        var out: [Entry] = []
        for (i, line) in try readLines(url).enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            guard let e = try? JSONDecoder().decode(Entry.self, from: Data(line.utf8)) else {
                throw DataError.malformed(file: url.path, line: i + 1, expected: "a JSON object with numeric \"step\" and \"loss\"")
            }
            out.append(e)
        }
        return out
    }

    /// Tokens and seconds summed over a log whose counters restart at 0 after each resume.
    public static func totals(_ entries: [Entry]) -> (tokens: Int, seconds: Double) {
        (tokensSeen(entries).last ?? 0, accumulate(entries.map { $0.elapsed ?? 0 }).last ?? 0)
    }

    /// Tokens seen up to each entry. A resumed run's log restarts its counters, so increments
    /// are accumulated (a drop means a restart: the new value is the increment).
    public static func tokensSeen(_ entries: [Entry]) -> [Int] { accumulate(entries.map { $0.tokens ?? 0 }) }

    static func accumulate<T: Numeric & Comparable>(_ values: [T]) -> [T] {
        var total: T = 0, last: T = 0
        return values.map { v in
            total += v >= last ? v - last : v
            last = v
            return total
        }
    }
}

extension LoopProgress {
    /// The standard progress line: step, loss, learning rate, gradient norm, speed, epoch, ETA.
    public var line: String {
        String(
            format: "step %d/%d  loss %.4f  aux %.4f  lr %.2e  |g| %.3f  %.0f tok/s  epoch %.2f  ETA %@",
            step, steps, stats.loss, stats.auxLoss, stats.lr, stats.gradNorm, tokensPerSecond, epochs, formatDuration(eta))
    }
}

/// SIGINT / SIGTERM set a flag that the training loop checks after each step.
final class StopSignals: @unchecked Sendable {
    private let lock = NSLock()
    private var sig: Int32? = nil
    private var sources: [DispatchSourceSignal] = []

    init(note: @escaping (String) -> Void) {
        for s in [SIGINT, SIGTERM] {
            signal(s, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: s, queue: .global())
            src.setEventHandler { [weak self] in
                guard let self else { return }
                self.lock.lock(); if self.sig == nil { self.sig = s }; self.lock.unlock()
                note("received \(s == SIGINT ? "SIGINT" : "SIGTERM"); finishing the current step and writing a checkpoint")
            }
            src.resume()
            sources.append(src)
        }
    }

    var received: Int32? { lock.lock(); defer { lock.unlock() }; return sig }

    /// Restores the default actions (a later Ctrl-C ends the process as usual).
    func uninstall() {
        for s in sources { s.cancel() }
        sources = []
        signal(SIGINT, SIG_DFL); signal(SIGTERM, SIG_DFL)
    }
}

/// FNV-1a of files, for a run record (data identity); `a,b` (a Moses pair) hashes both.
public func fileHashes(_ paths: [String]) throws -> String {
    try paths.map { p in
        try p.split(separator: ",").map(String.init).map {
            "\(URL(fileURLWithPath: $0).lastPathComponent):\(try FNV64.file(URL(fileURLWithPath: $0)))"
        }.joined(separator: ",")
    }.joined(separator: ";")
}

/// JSON with sorted keys (JSONEncoder's key order differs between processes).
public func sortedJSON<T: Encodable>(_ v: T) throws -> String {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys]
    return String(decoding: try e.encode(v), as: UTF8.self)
}
