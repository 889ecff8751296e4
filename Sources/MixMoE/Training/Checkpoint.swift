import Foundation

/// Errors of checkpointing and resuming.
public enum CheckpointError: LocalizedError {
    case corrupt(path: String, detail: String)
    case noCheckpoint(String)
    case configMismatch(path: String, differences: [String])

    public var errorDescription: String? {
        switch self {
        case .corrupt(let p, let d): return "checkpoint \(p) is damaged: \(d)"
        case .noCheckpoint(let p): return "no usable checkpoint under \(p)/checkpoints. Hint: start without --resume."
        case .configMismatch(let p, let diffs):
            return "cannot resume from \(p): the run differs from the checkpoint's:\n  " + diffs.joined(separator: "\n  ")
                + "\nHint: resume with the same arguments, or pass --force to resume anyway."
        }
    }
}

/// What a checkpoint records besides tensors.
public struct CheckpointState: Codable, Sendable {
    public var step: Int
    public var cursor: Int
    /// The run's configuration (hyper-parameters, data identity, thread count) as strings.
    public var run: [String: String]
    /// FNV-1a 64 of each file in the checkpoint, hex.
    public var checksums: [String: String]
}

/// Checkpoints under `OUT/checkpoints/step-NNNNNNNN/`: `model.safetensors`, `optimizer.safetensors`
/// (AdamW moments of the trainable views, `adam.m.VIEW` / `adam.v.VIEW` with the view's shape;
/// older checkpoints hold `adam.m` / `adam.v` over the whole store and still load), `config.json`, `train_log.jsonl` and
/// `state.json` (step, data cursor, run configuration, checksums). A checkpoint is written into a
/// temporary folder that is renamed into place, so a killed writer leaves no half checkpoint.
public enum Checkpoint {
    public static func folder(_ out: URL) -> URL { out.appendingPathComponent("checkpoints") }
    public static func name(step: Int) -> String { String(format: "step-%08d", step) }

    public static func save(
        out: URL, step: Int, trainer: Trainer, moments: (m: FloatBuffer, v: FloatBuffer)? = nil, cursor: Int,
        run: [String: String], log: [String], keep: Int = 3
    ) throws -> URL {
        precondition(moments != nil || !trainer.isSharded, "sharded moments must be gathered first")
        let (mom, vel) = moments ?? (trainer.optimizer.m, trainer.optimizer.v)
        // the moments are packed over the trainable views in view order
        var tensors: [(name: String, shape: [Int], values: UnsafePointer<Float>)] = []
        var at = 0
        for e in trainer.model.store.entries where e.trainable {
            tensors.append((name: "adam.m." + e.name, shape: e.shape, values: UnsafePointer(mom.ptr + at)))
            tensors.append((name: "adam.v." + e.name, shape: e.shape, values: UnsafePointer(vel.ptr + at)))
            at += e.count
        }
        precondition(at == mom.count && at == vel.count, "moments do not match the trainable views")
        let fm = FileManager.default
        let root = folder(out)
        try fm.createDirectory(at: root, withIntermediateDirectories: true)
        let final = root.appendingPathComponent(name(step: step))
        let tmp = root.appendingPathComponent(".\(name(step: step)).tmp-\(getpid())")
        try? fm.removeItem(at: tmp)
        try fm.createDirectory(at: tmp, withIntermediateDirectories: true)
        let m = trainer.model
        try m.save(directory: tmp, maxShardBytes: .max)  // one file: its checksum is part of the state
        try SafetensorsFile.write(
            tmp.appendingPathComponent("optimizer.safetensors"),
            tensors: tensors, metadata: ["step": String(trainer.optimizer.step)])
        try AtomicFile.write(log.joined(separator: "\n") + (log.isEmpty ? "" : "\n"), to: ModelDirectory(tmp).trainLog)
        var sums: [String: String] = [:]
        for f in [ModelDirectory.weightsName, "optimizer.safetensors", ModelDirectory.configName, ModelDirectory.trainLogName] {
            sums[f] = try FNV64.file(tmp.appendingPathComponent(f))
        }
        let state = CheckpointState(step: step, cursor: cursor, run: run, checksums: sums)
        try AtomicFile.writeJSON(state, to: tmp.appendingPathComponent("state.json"))
        try? fm.removeItem(at: final)
        try fm.moveItem(at: tmp, to: final)
        // keep the newest `keep`
        let all = (try? list(out)) ?? []
        for old in all.dropLast(max(keep, 1)) { try? fm.removeItem(at: old.url) }
        return final
    }

    /// Checkpoint folders, oldest first.
    public static func list(_ out: URL) throws -> [(step: Int, url: URL)] {
        let root = folder(out)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: root.path) else { return [] }
        return names.compactMap { n -> (Int, URL)? in
            guard n.hasPrefix("step-"), let s = Int(n.dropFirst(5)) else { return nil }
            return (s, root.appendingPathComponent(n))
        }.sorted { $0.0 < $1.0 }
    }

    /// Reads and verifies a checkpoint's state (every checksum).
    public static func verify(_ url: URL) throws -> CheckpointState {
        guard let data = try? Data(contentsOf: url.appendingPathComponent("state.json")),
            let st = try? JSONDecoder().decode(CheckpointState.self, from: data)
        else {
            throw CheckpointError.corrupt(path: url.path, detail: "state.json is missing or unreadable")
        }
        for (f, sum) in st.checksums.sorted(by: { $0.key < $1.key }) {
            let p = url.appendingPathComponent(f)
            guard FileManager.default.fileExists(atPath: p.path) else { throw CheckpointError.corrupt(path: url.path, detail: "\(f) is missing") }
            let got = try FNV64.file(p)
            guard got == sum else { throw CheckpointError.corrupt(path: url.path, detail: "\(f) checksum \(got) != recorded \(sum)") }
        }
        return st
    }

    /// The newest checkpoint that verifies; damaged ones are reported through `warn` and skipped.
    public static func latestGood(_ out: URL, warn: (String) -> Void) throws -> (url: URL, state: CheckpointState) {
        for c in try list(out).reversed() {
            do { return (c.url, try verify(c.url)) } catch { warn("skipping \(error.localizedDescription)") }
        }
        throw CheckpointError.noCheckpoint(out.path)
    }

    /// Loads weights and optimiser moments into a trainer whose model has the same layout.
    public static func restore(_ url: URL, state: CheckpointState, into trainer: Trainer) throws {
        let m = trainer.model
        let w = WeightFiles(files: [try SafetensorsFile(url: ModelDirectory(url).weights)])
        try w.check(against: m.store.entries.map { ($0.name, $0.shape) })
        w.fill(m.store)
        let o = try SafetensorsFile(url: url.appendingPathComponent("optimizer.safetensors"))
        let store = m.store
        let trainable = store.entries.filter(\.trainable)
        let n = trainable.reduce(0) { $0 + $1.count }
        // sharded moments are read whole here and scattered by Trainer.synchronizeFromRoot
        let packed = trainer.isSharded ? (m: FloatBuffer(count: n), v: FloatBuffer(count: n)) : (m: trainer.optimizer.m, v: trainer.optimizer.v)
        if trainer.isSharded { trainer.restoredMoments = packed }
        for (kind, buf) in [("m", packed.m), ("v", packed.v)] {
            if let legacy = o.tensors["adam.\(kind)"] {  // one tensor over the whole store
                guard legacy.shape == [store.count] else {
                    throw CheckpointError.corrupt(
                        path: url.path, detail: "optimizer.safetensors: adam.\(kind) does not match the model's \(store.count) parameters")
                }
                let full = FloatBuffer(count: store.count)
                withExtendedLifetime(full) {
                    o.read("adam.\(kind)", into: full.ptr)
                    TrainableRuns(store).pack(full.ptr, into: buf.ptr)
                }
                continue
            }
            var at = 0
            for e in trainable {
                let name = "adam.\(kind).\(e.name)"
                guard o.tensors[name]?.shape == e.shape else {
                    throw CheckpointError.corrupt(
                        path: url.path, detail: "optimizer.safetensors: \(name) is missing or not of shape \(e.shape) (were other views trainable?)")
                }
                o.read(name, into: buf.ptr + at)
                at += e.count
            }
        }
        trainer.restore(step: state.step)
    }

    /// Differences between a checkpoint's run configuration and the current one.
    public static func differences(_ old: [String: String], _ new: [String: String]) -> [String] {
        Set(old.keys).union(new.keys).sorted().compactMap { k in
            old[k] == new[k] ? nil : "\(k): checkpoint \(old[k] ?? "(absent)"), now \(new[k] ?? "(absent)")"
        }
    }
}
