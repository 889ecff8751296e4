import Foundation
import Testing

@testable import MixMoE

/// A tiny pretraining setup: config, tokenizer (fixture), text.
func tinyRunSetup() throws -> (dir: URL, args: [String]) {
    let dir = tempDir("resume")
    let cfg =
        #"{"model_type": "llama", "vocab_size": 3000, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5, "max_position_embeddings": 64, "tie_word_embeddings": true}"#
    try Data(cfg.utf8).write(to: dir.appendingPathComponent("config.json"))
    let cases = try JSONSerialization.jsonObject(with: Data(contentsOf: fixtures.appendingPathComponent("tokenizers/llama3.expected.json"))) as! [[String: Any]]
    let text = cases.compactMap { $0["text"] as? String }.map { $0.replacingOccurrences(of: "\n", with: " ") }.joined(separator: "\n")
    try Data(text.utf8).write(to: dir.appendingPathComponent("text.txt"))
    let args = [
        "pretrain", "--config", dir.appendingPathComponent("config.json").path,
        "--tokenizer", fixtures.appendingPathComponent("tokenizers/llama3.json").path,
        "--steps", "12", "--batch-tokens", "256", "--seq", "32", "--micro-tokens", "128", "--lr", "3e-3",
        "--checkpoint-every", "3", "--threads", "1", dir.appendingPathComponent("text.txt").path,
    ]
    return (dir, args)
}

/// Starts `mixmoe args` (a slowed-down training run), waits for its checkpoint at `step` in `out`
/// and kills it with SIGKILL: the state a crash leaves.
func killAfterCheckpoint(_ args: [String], out: URL, step: Int) throws {
    let (p, _) = try runMixmoe(args, wait: false)
    let target = Checkpoint.folder(out).appendingPathComponent(Checkpoint.name(step: step))
    let deadline = Date().addingTimeInterval(120)
    while !FileManager.default.fileExists(atPath: target.path) && Date() < deadline && p.isRunning { usleep(5_000) }
    kill(p.processIdentifier, SIGKILL)
    p.waitUntilExit()
    #expect(p.terminationReason == .uncaughtSignal, "the run must have been killed, not finished")
}

@Suite(.serialized) struct ResumeTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// SIGKILL after a checkpoint, resume, and the final weights are bit-identical to an
    /// uninterrupted run; a damaged newest checkpoint is skipped with a warning.
    @Test(arguments: [false, true])
    func killedRunResumesBitIdentical(corruptNewest: Bool) throws {
        let (dir, args) = try tinyRunSetup()
        let a = dir.appendingPathComponent("a"), b = dir.appendingPathComponent("b")
        let (pa, _) = try runMixmoe(args + ["--out", a.path])
        #expect(pa.terminationStatus == 0)

        try killAfterCheckpoint(args + ["--out", b.path, "--step-delay-ms", "150"], out: b, step: 6)
        #expect(!FileManager.default.fileExists(atPath: b.appendingPathComponent("model.safetensors").path))

        if corruptNewest {  // flip a byte in the newest checkpoint's weights
            let newest = try Checkpoint.list(b).last!.url.appendingPathComponent("model.safetensors")
            var d = try Data(contentsOf: newest)
            d[d.count / 2] ^= 0xFF
            try d.write(to: newest)
        }
        let (pr, err) = try runMixmoe(args + ["--out", b.path, "--resume"])
        let msg = err.text
        #expect(pr.terminationStatus == 0, "\(msg)")
        if corruptNewest { #expect(msg.contains("skipping") && msg.contains("checksum"), "\(msg)") }
        let wa = try Data(contentsOf: a.appendingPathComponent("model.safetensors"))
        let wb = try Data(contentsOf: b.appendingPathComponent("model.safetensors"))
        #expect(wa == wb, "resumed weights differ from the uninterrupted run")
        func losses(_ u: URL) throws -> [String] {
            try String(contentsOf: u.appendingPathComponent("train_log.jsonl"), encoding: .utf8).split(separator: "\n")
                .map { String($0.split(separator: ",").prefix(2).joined()) }
        }
        #expect(try losses(a) == losses(b), "the logs (step, loss) must match")
    }

    /// `finetune` (dense SFT on parallel data, the translation data path with its own batch
    /// order): SIGKILL after a checkpoint and resume equals the uninterrupted run bit for bit.
    @Test func killedFinetuneResumesBitIdentical() throws {
        let (dir, args) = try tinyRunSetup()
        let base = dir.appendingPathComponent("base")
        let (p0, _) = try runMixmoe(args.map { $0 == "12" ? "2" : $0 } + ["--out", base.path])
        #expect(p0.terminationStatus == 0)
        let lines = try String(contentsOf: ResumeTests.repo.appendingPathComponent("data/demo/parallel/train.de-en.tsv"), encoding: .utf8)
            .split(separator: "\n").prefix(120)
        let tsv = dir.appendingPathComponent("train.de-en.tsv")
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: tsv)
        // a dev file: 10 pairs from elsewhere in the corpus, and one whose German is a training pair's
        let devLines = try String(contentsOf: ResumeTests.repo.appendingPathComponent("data/demo/parallel/dev.de-en.tsv"), encoding: .utf8)
            .split(separator: "\n").prefix(10)
        let shared = "held-out English\t" + lines[7].split(separator: "\t")[1]
        let devTSV = dir.appendingPathComponent("dev.de-en.tsv")
        try Data(((devLines + [Substring(shared)]).joined(separator: "\n") + "\n").utf8).write(to: devTSV)
        let ft = [
            "finetune", "--model", base.path, "--steps", "12", "--batch-tokens", "256", "--micro-tokens", "128", "--seq", "64",
            "--lr", "3e-3", "--checkpoint-every", "3", "--threads", "1", tsv.path,
            "--dev", devTSV.path, "--exclude", devTSV.path, "--eval-every", "4", "--dev-pairs", "5",
        ]
        let a = dir.appendingPathComponent("fa"), b = dir.appendingPathComponent("fb")
        let (pa, ea) = try runMixmoe(ft + ["--out", a.path])
        let logA = ea.text
        #expect(pa.terminationStatus == 0, "\(logA)")
        // the German of training pair 7 is in the held-out file: that pair (both directions) goes
        let sameGerman = lines.filter { $0.split(separator: "\t").last == lines[7].split(separator: "\t").last }.count
        #expect(logA.contains("; \(sameGerman) training pairs sharing a segment with 1 held-out file(s) dropped"), "\(logA)")
        try killAfterCheckpoint(ft + ["--out", b.path, "--step-delay-ms", "150"], out: b, step: 6)
        let (pr, err) = try runMixmoe(ft + ["--out", b.path, "--resume"])
        #expect(pr.terminationStatus == 0, "\(err.text)")
        let wa = try Data(contentsOf: a.appendingPathComponent("model.safetensors"))
        let wb = try Data(contentsOf: b.appendingPathComponent("model.safetensors"))
        #expect(wa == wb, "resumed fine-tuning differs from the uninterrupted run")
        // the dev-loss curve (steps 4, 8, 12) is the same after the resume, and best/ holds the
        // weights of its lowest point (the final weights when that is step 12)
        let curveA = try JSONDecoder().decode([DevPoint].self, from: Data(contentsOf: a.appendingPathComponent("dev_loss.json")))
        let curveB = try JSONDecoder().decode([DevPoint].self, from: Data(contentsOf: b.appendingPathComponent("dev_loss.json")))
        #expect(curveA.map(\.step) == [4, 8, 12] && curveA == curveB, "\(curveA) vs \(curveB)")
        let lowest = try #require(curveA.min { $0.loss < $1.loss })
        let best = try String(contentsOf: b.appendingPathComponent("best/best_step.json"), encoding: .utf8)
        #expect(best.contains("\"step\": \(lowest.step),"), "\(best)")
        if lowest.step == 12 { #expect(try Data(contentsOf: b.appendingPathComponent("best/model.safetensors")) == wb) }
        let wbase = try Data(contentsOf: base.appendingPathComponent("model.safetensors"))
        #expect(wa != wbase, "fine-tuning changed the weights")
    }

    @Test func resumeWithDifferentSettingsNamesTheDifference() throws {
        let (dir, args) = try tinyRunSetup()
        let out = dir.appendingPathComponent("r")
        #expect(try runMixmoe(args + ["--out", out.path]).process.terminationStatus == 0)
        let changed = args.map { $0 == "3e-3" ? "1e-3" : $0 }
        let (p, err) = try runMixmoe(changed + ["--out", out.path, "--resume"])
        let msg = err.text
        #expect(p.terminationStatus != 0)
        #expect(msg.contains("lr: checkpoint 0.003, now 0.001"), "\(msg)")
    }

    @Test func sigtermWritesACheckpointAndExitsNonZero() throws {
        let (dir, args) = try tinyRunSetup()
        let out = dir.appendingPathComponent("t")
        let (p, err) = try runMixmoe(args + ["--out", out.path, "--step-delay-ms", "200", "--checkpoint-every", "0"], wait: false)
        let log = out.appendingPathComponent("checkpoints")
        usleep(1_500_000)
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        let msg = err.text
        #expect(p.terminationStatus == 143, "\(msg)")
        #expect(msg.contains("SIGTERM") && msg.contains("--resume"), "\(msg)")
        let cps = try Checkpoint.list(out)
        #expect(cps.count == 1, "one checkpoint at the interruption (\(log.path))")
        if let c = cps.first { _ = try Checkpoint.verify(c.url) }
    }
}

/// The optimiser holds moments for trainable views only, and a checkpoint stores them per view;
/// checkpoints of the earlier format (one tensor over the whole store) still restore.
struct OptimizerStateTests {
    @Test func momentsOfTrainableViewsOnlyAndBothCheckpointFormatsRestore() throws {
        func trained() throws -> Trainer {
            let m = try DecoderModel.load(directory: modelFixture("llama_untied"))
            m.store.setTrainable { $0.hasPrefix("model.layers.1.") }  // as stage 2: most views frozen
            let e = try ModelExpectation(modelFixture("llama_untied"))
            let t = Trainer(model: m, schedule: CosineSchedule(peak: 1e-2, totalSteps: 5, warmupFraction: 0))
            for _ in 0..<2 { try t.trainStep([TokenBatch(ids: e.ids, targets: e.targets, batch: e.batch, seq: e.seq)]) }
            return t
        }
        let t = try trained()
        let store = t.model.store
        #expect(t.optimizer.m.count == store.trainableCount && store.trainableCount < store.count / 2)
        let out = tempDir("moments")
        let url = try Checkpoint.save(out: out, step: 2, trainer: t, cursor: 0, run: [:], log: [])
        let fresh = try trained()  // same layout; its moments are overwritten by the restore
        fresh.optimizer.m.zero(); fresh.optimizer.v.zero()
        try Checkpoint.restore(url, state: try Checkpoint.verify(url), into: fresh)
        #expect(fresh.optimizer.m.array == t.optimizer.m.array && fresh.optimizer.v.array == t.optimizer.v.array)

        // the earlier format: adam.m / adam.v over the whole store, zero at frozen views
        var legacy: [[Float]] = []
        for buf in [t.optimizer.m, t.optimizer.v] {
            var full = [Float](repeating: 0, count: store.count)
            var at = 0
            for e in store.entries where e.trainable {
                for i in 0..<e.count { full[e.offset + i] = buf[at + i] }
                at += e.count
            }
            legacy.append(full)
        }
        try legacy[0].withUnsafeBufferPointer { m in
            try legacy[1].withUnsafeBufferPointer { v in
                try SafetensorsFile.write(
                    url.appendingPathComponent("optimizer.safetensors"),
                    tensors: [(name: "adam.m", shape: [store.count], values: m.baseAddress!), (name: "adam.v", shape: [store.count], values: v.baseAddress!)])
            }
        }
        fresh.optimizer.m.zero(); fresh.optimizer.v.zero()
        try Checkpoint.restore(url, state: CheckpointState(step: 2, cursor: 0, run: [:], checksums: [:]), into: fresh)
        #expect(fresh.optimizer.m.array == t.optimizer.m.array && fresh.optimizer.v.array == t.optimizer.v.array)
    }
}

/// Checkpoint damage is detected by checksum, with a message naming the file.
struct CheckpointDamageTests {
    func tinyTrainer() throws -> Trainer {
        let m = try DecoderModel.load(directory: modelFixture("llama_untied"))
        return Trainer(model: m, schedule: CosineSchedule(peak: 1e-3, totalSteps: 10))
    }

    @Test(arguments: ["truncate", "flip"])
    func damagedCheckpointFallsBack(damage: String) throws {
        let t = try tinyTrainer(), out = tempDir("ckpt")
        _ = try Checkpoint.save(out: out, step: 1, trainer: t, cursor: 10, run: ["a": "1"], log: ["x"])
        let newest = try Checkpoint.save(out: out, step: 2, trainer: t, cursor: 20, run: ["a": "1"], log: ["x", "y"])
        let f = newest.appendingPathComponent("optimizer.safetensors")
        var d = try Data(contentsOf: f)
        if damage == "truncate" { d = d.prefix(d.count - 7) } else { d[d.count - 3] ^= 0x01 }
        try d.write(to: f)
        #expect(throws: CheckpointError.self) { try Checkpoint.verify(newest) }
        var warnings: [String] = []
        let (url, st) = try Checkpoint.latestGood(out) { warnings.append($0) }
        #expect(st.step == 1 && st.cursor == 10)
        #expect(url.lastPathComponent == "step-00000001")
        #expect(warnings.count == 1 && warnings[0].contains("optimizer.safetensors"))
    }
}

struct NonFiniteTests {
    /// A NaN weight makes the step throw before any update, naming the step and a tensor.
    @Test func nanStopsBeforeTheUpdate() throws {
        let m = try DecoderModel.load(directory: modelFixture("llama_untied"))
        let e = try ModelExpectation(modelFixture("llama_untied"))
        let t = Trainer(model: m, schedule: CosineSchedule(peak: 1e-2, totalSteps: 5, warmupFraction: 0))
        let batch = TokenBatch(ids: e.ids, targets: e.targets, batch: e.batch, seq: e.seq)
        try t.trainStep([batch])
        m.store.w(m.store.id("model.layers.1.mlp.up_proj.weight")!)[5] = .nan
        let before = m.store.params.array
        do {
            try t.trainStep([batch])
            Issue.record("a NaN weight must stop the step")
        } catch let err as TrainingError {
            let msg = err.localizedDescription
            #expect(msg.contains("step 2"), "\(msg)")
            #expect(msg.contains("the loss") && msg.contains("the gradient of model."), "\(msg)")
        }
        let after = m.store.params.array
        #expect(zip(before, after).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }, "no weight may change")
        #expect(t.step == 1)
    }
}

/// `--model` is one option group everywhere; `translate` and `serve` default to the shipped
/// translator (models/mt, relative to the working directory), every other command requires it.
@Suite struct ModelDefaultTests {
    /// Runs the debug `mixmoe` in `cwd` with `stdin`; returns exit status and stderr.
    func run(_ args: [String], in cwd: URL, stdin: String = "") throws -> (status: Int32, stderr: String) {
        let (p, err) = try runProcess(mixmoeBinary, args, wait: true, stdin: stdin, cwd: cwd)
        return (p.terminationStatus, err.text)
    }

    @Test func translateWithoutModelNamesTheMissingDefault() throws {
        let dir = tempDir("no-default-model")
        let r = try run(["translate", "--from", "de", "--to", "en"], in: dir, stdin: "Hallo\n")
        #expect(r.status == 64, "a usage error: \(r.stderr)")  // ArgumentParser's exit code for validation errors
        #expect(r.stderr.contains("no --model given, and the default, models/mt"), "\(r.stderr)")
        #expect(r.stderr.contains("pass --model DIR"), "\(r.stderr)")
    }

    @Test func otherCommandsStillRequireModel() throws {
        let r = try run(["perplexity", "x.txt"], in: tempDir("no-model"))
        #expect(r.status == 64, "\(r.stderr)")
        #expect(r.stderr.contains("Missing expected argument '--model <model>'"), "\(r.stderr)")
    }
}
