import Foundation

/// The dev-loss curve of a long, resumable run: the loss on held-out pairs every `every` steps
/// (and at the last step), kept in `directory/dev_loss.json` (``DevPoint``s, the format
/// `mixmoe report dev-loss` reads), and the weights of the step with the lowest dev loss kept
/// in `directory/best/`, so the final model can be chosen by dev loss rather than by test score.
///
/// Resume: ``resume(at:)`` keeps the points up to the checkpoint's step (points evaluated after
/// it are recomputed by the resumed run, on the same weights) and the best of those.
public final class DevLossMonitor {
    public let dev: DevLoss
    public let every: Int
    public let directory: URL
    public let label: String
    /// Writes a model directory (weights, tokenizer); called with `directory/best` on a new best.
    let saveBest: (DecoderModel, URL) throws -> Void
    public private(set) var points: [DevPoint] = []

    public init(dev: DevLoss, every: Int, directory: URL, label: String, saveBest: @escaping (DecoderModel, URL) throws -> Void) {
        precondition(every > 0, "evaluate every N >= 1 steps")
        self.dev = dev; self.every = every; self.directory = directory; self.label = label; self.saveBest = saveBest
    }

    public var file: URL { ModelDirectory(directory).devLoss }
    public var bestDirectory: URL { ModelDirectory(directory).best }
    /// The point with the lowest loss so far.
    public var best: DevPoint? { points.min { $0.loss < $1.loss } }

    /// Continues a run resumed at `step`: keeps the recorded points up to it.
    public func resume(at step: Int) throws {
        guard FileManager.default.fileExists(atPath: file.path) else { return }
        guard let all = try? JSONDecoder().decode([DevPoint].self, from: Data(contentsOf: file)) else {
            throw DataError.malformed(file: file.path, line: 1, expected: "a JSON array of {label, step, loss} (written by --eval-every)")
        }
        points = all.filter { $0.step <= step }
    }

    /// Called after every optimiser step: evaluates when `step` is due (or the last), records the
    /// point, and saves the model as the new best when its loss is the lowest. Returns the point.
    @discardableResult
    public func after(step: Int, of steps: Int, model: DecoderModel) throws -> DevPoint? {
        guard step % every == 0 || step == steps, !points.contains(where: { $0.step == step }) else { return nil }
        let previousBest = best?.loss ?? .infinity
        let p = DevPoint(label: label, step: step, loss: try dev.evaluate(model))
        points.append(p)
        if p.loss < previousBest {
            try saveBest(model, bestDirectory)
            try AtomicFile.write(
                String(format: "{\"step\": %d, \"dev_loss\": %.6f}\n", p.step, p.loss), to: bestDirectory.appendingPathComponent("best_step.json"))
        }
        try Self.write(points, to: file)
        return p
    }

    /// Evaluates during `run` (rank 0, after its progress report): the first reported step after
    /// a resume keeps the recorded curve up to the checkpoint; `note` gets each evaluation's line
    /// and any error (an evaluation that fails does not stop the training).
    public func observe(_ run: TrainingRun, model: DecoderModel, resumed: Bool, note: @escaping (String) -> Void) {
        let report = run.progress
        var first = true
        run.progress = { [self] p in
            report(p)
            guard run.collective.isRoot else { return }
            do {
                if first && resumed { try resume(at: p.step - 1) }
                first = false
                if let d = try after(step: p.step, of: p.steps, model: model), let b = best {
                    note(String(format: "dev loss after step %d: %.4f (%d pairs; best %.4f at step %d)", d.step, d.loss, dev.pairs, b.loss, b.step))
                }
            } catch { note("error: dev evaluation: \(error.localizedDescription)") }
        }
    }

    /// A dev-loss curve as `dev_loss.json` (pretty, sorted keys), as `report dev-loss` reads it.
    public static func write(_ points: [DevPoint], to url: URL) throws {
        try AtomicFile.writeJSON(points, to: url)
    }
}
