import Foundation
import Testing

@testable import MixMoE

/// The library's run harness, in process: resume, logs, settings and corpus folders.
struct TrainingRunTests {
    func run(_ dir: URL, resume: Bool) throws -> (DecoderModel, TrainingLog) {
        let m = try DecoderModel.load(directory: modelFixture("llama_untied"))
        var rng = SplitMix64(seed: 5)
        let data = PackedDataset(tokens: (0..<2000).map { _ in Int32(rng.next() % 97) }, seq: 16, seed: 3)
        let settings = TrainingSettings(steps: 6, batchTokens: 64, microTokens: 32, seq: 16, lr: 3e-3, warmup: 0.2)
        let r = TrainingRun(model: m, settings: settings, source: data, record: ["test": "resume"])
        r.checkpoints = CheckpointPolicy(directory: dir, every: 3, keep: 5, resume: resume)
        return (m, try r.run())
    }

    /// A run resumed from its step-3 checkpoint ends bit-identical to the uninterrupted run, with
    /// the same log (the newest checkpoint removed stands for a run killed after step 3).
    @Test func resumedRunIsBitIdentical() throws {
        let dir = tempDir("harness")
        let (full, log) = try run(dir, resume: false)
        try FileManager.default.removeItem(at: Checkpoint.folder(dir).appendingPathComponent(Checkpoint.name(step: 6)))
        let (resumed, log2) = try run(dir, resume: true)
        #expect(full.store.params.array == resumed.store.params.array)
        #expect(log.lines.count == 6)
        #expect(log.lines.map { $0.prefix(40) } == log2.lines.map { $0.prefix(40) })  // step, loss, aux: identical
    }

    /// A resume with other settings is refused, naming the difference.
    @Test func resumeWithOtherSettingsIsRefused() throws {
        let dir = tempDir("harness-diff")
        _ = try run(dir, resume: false)
        let m = try DecoderModel.load(directory: modelFixture("llama_untied"))
        let data = PackedDataset(tokens: Array(repeating: 1, count: 500), seq: 16, seed: 3)
        let r = TrainingRun(
            model: m, settings: TrainingSettings(steps: 6, batchTokens: 64, microTokens: 32, seq: 16, lr: 1e-3),
            source: data, record: ["test": "resume"])
        r.checkpoints = CheckpointPolicy(directory: dir, every: 3, resume: true)
        #expect {
            try r.run()
        } throws: { error in
            let m = error.localizedDescription
            return m.contains("lr: checkpoint 0.003, now 0.001") && m.contains("--force")
        }
    }
}

struct TrainingLogTests {
    /// Counters restart at 0 after a resume; totals add the segments: closed form.
    @Test func totalsAddResumedSegments() throws {
        let url = tempDir("log").appendingPathComponent("train_log.jsonl")
        let lines = [(1, 100, 1.0), (2, 200, 2.0), (3, 300, 3.5), (4, 100, 0.5), (5, 200, 1.5)].map {
            "{\"step\": \($0.0), \"loss\": 4.0, \"tokens\": \($0.1), \"elapsed_s\": \($0.2)}"
        }
        try Data((lines.joined(separator: "\n") + "\n\n").utf8).write(to: url)
        let (tokens, seconds) = TrainingLog.totals(try TrainingLog.read(url))
        #expect(tokens == 300 + 200)
        #expect(abs(seconds - (3.5 + 1.5)) < 1e-12)
    }

    @Test func malformedLineNamesFileAndLine() throws {
        let url = tempDir("log").appendingPathComponent("train_log.jsonl")
        try Data("{\"step\": 1, \"loss\": 4.0}\n{\"step\": \"x\"}\n".utf8).write(to: url)
        #expect(throws: DataError.malformed(file: url.path, line: 2, expected: "a JSON object with numeric \"step\" and \"loss\"")) {
            try TrainingLog.read(url)
        }
    }
}

struct SettingsTests {
    @Test(arguments: [
        (TrainingSettings(seq: 1), "--seq"), (TrainingSettings(batchTokens: 64, seq: 128), "--batch-tokens"),
        (TrainingSettings(microTokens: 16, seq: 32), "--micro-tokens"), (TrainingSettings(lr: 0), "--lr"),
        (TrainingSettings(warmup: 1.5), "--warmup"),
    ])
    func invalidSettingsNameTheOption(_ s: TrainingSettings, _ option: String) {
        #expect(throws: SettingsError.self) { try s.validate() }
        do { try s.validate() } catch { #expect(error.localizedDescription.hasPrefix(option)) }
    }

    /// A placement's text form parses back to itself (the form config.json and run-cache keys use).
    @Test(arguments: ["uniform", "bottom", "top", "dense-bottom", "3,7"])
    func placementRoundTrips(_ s: String) throws {
        #expect(try #require(Placement(s)).description == s)
        #expect(Placement("sideways") == nil)
    }
}

struct CorpusFolderTests {
    @Test func missingFileIsNamed() throws {
        let dir = tempDir("corpus")
        let c = CorpusFolder(dir, languages: ["de"])
        #expect(throws: DataError.self) { try c.check(splits: [.train]) }
        do { try c.check(splits: [.train], mono: false) } catch {
            #expect(error.localizedDescription.contains("parallel/train.de-en.tsv"))
        }
    }
}
