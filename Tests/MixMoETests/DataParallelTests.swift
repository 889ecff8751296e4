import Foundation
import Testing

@testable import MixMoE

/// Open MPI's launcher (CI installs openmpi-bin).
let mpirun = URL(fileURLWithPath: "/usr/bin/mpirun")

/// `mpirun -np N mixmoe ARGS` (as root and with more ranks than cores where needed).
@discardableResult
func runMPI(_ n: Int, _ args: [String], wait: Bool = true) throws -> (process: Process, stderr: CapturedStderr) {
    guard FileManager.default.isExecutableFile(atPath: mpirun.path) else {
        throw ModelError.missingFile(mpirun.path, hint: "install Open MPI: apt-get install openmpi-bin (.ci/run does)")
    }
    return try runProcess(mpirun, ["--allow-run-as-root", "--oversubscribe", "-np", String(n), mixmoeBinary.path] + args, wait: wait)
}

/// All tensors of a safetensors file, concatenated in name order.
func flatTensors(_ url: URL) throws -> [Float] {
    let f = try SafetensorsFile(url: url)
    return f.tensors.keys.sorted().flatMap { f.floats($0) }
}

/// A tiny dense model, its Mix-MoE upcycle (2 experts per group, MoE in layer 1) and data for
/// every kind of run, made once per test.
struct DataParallelSetup {
    let dir: URL, dense: URL, moe: URL
    let text: String, pairs: String

    init() throws {
        let (d, args) = try tinyRunSetup()
        dir = d
        dense = d.appendingPathComponent("dense"); moe = d.appendingPathComponent("moe")
        let text = d.appendingPathComponent("text.txt").path
        self.text = text
        let (p, e) = try runMixmoe(
            Array(args.prefix(while: { $0 != "--steps" })) + ["--steps", "1", "--seq", "32", "--threads", "1", "--out", dense.path, text])
        try #require(p.terminationStatus == 0, "\(e.text)")
        let (u, ue) = try runMixmoe(["upcycle", "--model", dense.path, "--out", moe.path, "--experts", "2", "--every", "2"])
        try #require(u.terminationStatus == 0, "\(ue.text)")
        // parallel text: the fixture sentences paired with themselves reversed word by word
        let lines = try String(contentsOfFile: text, encoding: .utf8).replacingOccurrences(of: "\t", with: " ").split(separator: "\n")
            .filter { $0.split(separator: " ").count >= 2 }
        let tsv = lines.map { "\($0)\t\($0.split(separator: " ").reversed().joined(separator: " "))" }.joined(separator: "\n") + "\n"
        pairs = d.appendingPathComponent("train.de-en.tsv").path
        try Data(tsv.utf8).write(to: d.appendingPathComponent("train.de-en.tsv"))
    }

    /// The command line of one kind of run: 5 steps of 4 micro-batches.
    func args(_ kind: String, out: URL) -> [String] {
        let common = ["--steps", "5", "--lr", "3e-3", "--threads", "1", "--out", out.path]
        let text = ["--seq", "32", "--batch-tokens", "256", "--micro-tokens", "64"] + common + [self.text]
        switch kind {
        case "full":  // every parameter of the dense model
            return [
                "pretrain", "--config", dense.appendingPathComponent("config.json").path, "--tokenizer",
                dense.appendingPathComponent("tokenizer.json").path, "--init-from", dense.path,
            ] + text
        case "stage1":  // LM experts and routers, with the load-balance loss
            return ["train", "--stage", "1", "--model", moe.path, "--lb-coef", "0.1"] + text
        default:  // stage 2: the MT side only, translation pairs of varying length
            return ["train", "--stage", "2", "--model", moe.path, "--seq", "64", "--batch-tokens", "512", "--micro-tokens", "128"] + common + [pairs]
        }
    }
}

@Suite(.serialized) struct DataParallelTests {
    /// Two ranks on the same global batch give one process's training (with the Adam moments
    /// sharded over the ranks, ZeRO-1, too): the reduced gradients
    /// of the first step and the weights after 5 steps within 1e-5 (relative, the order of the
    /// float sums differs), and the two ranks' weights bitwise identical.
    @Test(arguments: [("full", false), ("stage1", false), ("stage2", false), ("full", true), ("stage2", true)])
    func twoRanksEqualOneProcess(kind: String, zero1: Bool) throws {
        let s = try DataParallelSetup()
        let one = s.dir.appendingPathComponent("one"), two = s.dir.appendingPathComponent("two")
        let (p1, e1) = try runMixmoe(s.args(kind, out: one) + ["--debug-dump", one.appendingPathComponent("dump").path])
        #expect(p1.terminationStatus == 0, "\(e1.text)")
        let (p2, e2) = try runMPI(2, s.args(kind, out: two) + ["--debug-dump", two.appendingPathComponent("dump").path] + (zero1 ? ["--zero1"] : []))
        #expect(p2.terminationStatus == 0, "\(e2.text)")
        func dump(_ u: URL, _ f: String) throws -> [Float] { try flatTensors(u.appendingPathComponent("dump/\(f)")) }
        let g1 = try dump(one, "grads-rank-0.safetensors"), g2 = try dump(two, "grads-rank-0.safetensors")
        #expect(g1.count == g2.count && g1.count > 0)
        if g1.count == g2.count { #expect(relativeError(g2, g1) < 1e-5, "gradients: \(relativeError(g2, g1))") }
        let w1 = try dump(one, "weights-rank-0.safetensors"), w2 = try dump(two, "weights-rank-0.safetensors")
        #expect(relativeError(w2, w1) < 1e-5, "weights after 5 steps: \(relativeError(w2, w1))")
        let w2b = try dump(two, "weights-rank-1.safetensors")
        #expect(w2.withUnsafeBytes { Data($0) } == w2b.withUnsafeBytes { Data($0) }, "the ranks' weights must be bitwise identical")
        // the gradients are not zero: the comparison is not between two untouched models
        #expect(g1.contains { $0 != 0 })
    }
}

/// The pids of an mpirun's ranks (its children with OMPI_COMM_WORLD_RANK in their environment).
func rankPids(of launcher: Process) -> [Int: Int32] {
    var out: [Int: Int32] = [:]
    for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
        guard let pid = Int32(name), let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { continue }
        // field 4 of /proc/PID/stat is the parent pid (after the parenthesised command name)
        let fields = stat.split(separator: ")").last.map { $0.split(separator: " ") } ?? []
        guard fields.count > 2, Int32(fields[1]) == launcher.processIdentifier,
            let env = FileManager.default.contents(atPath: "/proc/\(pid)/environ")
        else { continue }
        for v in env.split(separator: 0) {
            let s = String(decoding: v, as: UTF8.self)
            if s.hasPrefix("OMPI_COMM_WORLD_RANK="), let r = Int(s.dropFirst(21)) { out[r] = pid }
        }
    }
    return out
}

extension DataParallelTests {
    /// kill -9 of one rank mid-run ends the whole job with a non-zero status within seconds (no
    /// rank waits forever in a collective), and `--resume` then finishes with weights bitwise
    /// equal to an uninterrupted two-rank run (with ZeRO-1: the sharded moments are gathered into
    /// the checkpoint and scattered again on resume).
    @Test(arguments: [false, true]) func killedRankEndsTheJobAndResumes(zero1: Bool) throws {
        let s = try DataParallelSetup()
        let a = s.dir.appendingPathComponent("a"), b = s.dir.appendingPathComponent("b")
        let args = { (out: URL) in s.args("stage2", out: out).map { $0 == "5" ? "8" : $0 } + ["--checkpoint-every", "2"] + (zero1 ? ["--zero1"] : []) }
        let (pa, ea) = try runMPI(2, args(a))
        #expect(pa.terminationStatus == 0, "\(ea.text)")

        let (pb, eb) = try runMPI(2, args(b) + ["--step-delay-ms", "300"], wait: false)
        let target = Checkpoint.folder(b).appendingPathComponent(Checkpoint.name(step: 4))
        let deadline = Date().addingTimeInterval(180)
        while !FileManager.default.fileExists(atPath: target.path) && Date() < deadline && pb.isRunning { usleep(5_000) }
        let pids = rankPids(of: pb)
        #expect(pids[1] != nil, "rank 1's pid among mpirun's children: \(pids)")
        let killedAt = Date()
        if let victim = pids[1] { kill(victim, SIGKILL) }
        while pb.isRunning && Date().timeIntervalSince(killedAt) < 30 { usleep(10_000) }
        let took = Date().timeIntervalSince(killedAt)
        if pb.isRunning { pb.terminate() }
        pb.waitUntilExit()
        let msg = eb.text
        #expect(took < 10, "the job must end within seconds of a rank's death (took \(took) s)")
        #expect(pb.terminationStatus != 0, "\(msg)")
        #expect(!FileManager.default.fileExists(atPath: b.appendingPathComponent("model.safetensors").path))

        let (pr, er) = try runMPI(2, args(b) + ["--resume"])
        let rmsg = er.text
        #expect(pr.terminationStatus == 0, "\(rmsg)")
        #expect(rmsg.contains("resuming from"), "\(rmsg)")
        let wa = try Data(contentsOf: a.appendingPathComponent("model.safetensors"))
        let wb = try Data(contentsOf: b.appendingPathComponent("model.safetensors"))
        #expect(wa == wb, "resumed weights differ from the uninterrupted run")
    }
}
