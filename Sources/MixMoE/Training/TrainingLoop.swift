import Foundation

/// Where training batches come from (packed text, translation pairs, ...). Its position is one
/// integer so a checkpoint can record it and a resumed run neither loses nor repeats data.
public protocol BatchSource: AnyObject {
    func nextBatch(sequences: Int) -> TokenBatch
    var cursor: Int { get }
    func seek(_ cursor: Int)
    var epochs: Double { get }
}

extension PackedDataset: BatchSource {}

/// Progress of a running loop, for the caller to print.
public struct LoopProgress: Sendable {
    public var step: Int, steps: Int
    public var stats: StepStats
    public var tokensPerSecond: Double
    public var eta: Double
    public var epochs: Double
}

/// Runs optimiser steps over a batch source: builds each step's micro-batches, calls the trainer,
/// records a JSON log line per step and reports progress.
public final class TrainingLoop {
    public let trainer: Trainer
    public let source: BatchSource
    public let sequencesPerStep: Int
    public let microBatch: Int
    public private(set) var log: [String] = []

    public init(trainer: Trainer, source: BatchSource, sequencesPerStep: Int, microBatch: Int) {
        self.trainer = trainer; self.source = source
        self.sequencesPerStep = sequencesPerStep; self.microBatch = microBatch
    }

    public func run(steps: Int, report: (LoopProgress) -> Void) throws {
        let start = monotonicSeconds()
        var tokens = 0
        for s in 0..<steps {
            var micro: [TokenBatch] = []
            var left = sequencesPerStep
            while left > 0 {
                let k = min(microBatch, left)
                micro.append(source.nextBatch(sequences: k))
                left -= k
            }
            let st = try trainer.trainStep(micro)
            tokens += micro.reduce(0) { $0 + $1.batch * $1.seq }
            let el = monotonicSeconds() - start
            log.append(String(format: "{\"step\": %d, \"loss\": %.5f, \"aux_loss\": %.5f, \"lr\": %.6g, \"grad_norm\": %.4f, \"tokens\": %d, \"elapsed_s\": %.2f}",
                              trainer.step, st.loss, st.auxLoss, st.lr, st.gradNorm, tokens, el))
            report(LoopProgress(step: s + 1, steps: steps, stats: st, tokensPerSecond: Double(tokens) / el,
                                eta: el / Double(s + 1) * Double(steps - s - 1), epochs: source.epochs))
        }
    }

    public var logText: String { log.joined(separator: "\n") + "\n" }
}
