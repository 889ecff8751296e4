import Foundation

extension PackedDataset: BatchSource {
    public func nextBatch(tokens: Int) -> TokenBatch { nextBatch(sequences: max(1, tokens / seq)) }
}

/// Progress of a running loop, for the caller to print.
public struct LoopProgress: Sendable {
    public var step: Int, steps: Int
    public var stats: StepStats
    public var tokensPerSecond: Double
    public var eta: Double
    public var epochs: Double
    /// Wall time of this step alone (benchmarks take the median of these).
    public var stepSeconds: Double
}

/// Runs optimiser steps over a batch source: each step accumulates micro-batches of at most
/// `microTokens` tokens until it holds `stepTokens`, calls the trainer, records a JSON log line
/// and reports progress.
public final class TrainingLoop {
    public let trainer: Trainer
    public let source: BatchSource
    public let stepTokens: Int
    public let microTokens: Int
    public private(set) var log: [String] = []

    public init(trainer: Trainer, source: BatchSource, stepTokens: Int, microTokens: Int) {
        self.trainer = trainer; self.source = source
        self.stepTokens = stepTokens; self.microTokens = min(microTokens, stepTokens)
    }

    /// Restores the log of a resumed run (lines up to the checkpoint's step).
    public func restoreLog(_ lines: [String]) { log = lines }

    /// Runs until the trainer reaches `steps`. After each step: `afterStep` (checkpointing); when
    /// `shouldStop` turns true (a signal), the loop ends after the current step and returns false.
    @discardableResult
    public func run(
        steps: Int, report: (LoopProgress) -> Void, afterStep: (Int) throws -> Void = { _ in },
        shouldStop: () -> Bool = { false }
    ) throws -> Bool {
        let start = monotonicSeconds()
        var tokens = 0
        let first = trainer.step
        for s in first..<steps {
            let stepStart = monotonicSeconds()
            // Every rank draws the whole global step (so the data cursor is the same everywhere)
            // and trains on micro-batches rank, rank + size, ...: disjoint shards of the step the
            // single process would run.
            var micro: [TokenBatch] = []
            var have = 0, count = 0
            let world = trainer.collective
            while have < stepTokens {
                let mb = source.nextBatch(tokens: min(microTokens, stepTokens - have))
                if count % world.size == world.rank { micro.append(mb) }
                count += 1
                have += mb.batch * mb.seq
            }
            let st = try trainer.trainStep(micro)
            tokens += have
            let el = monotonicSeconds() - start
            log.append(
                String(
                    format: "{\"step\": %d, \"loss\": %.5f, \"aux_loss\": %.5f, \"lr\": %.6g, \"grad_norm\": %.4f, \"tokens\": %d, \"elapsed_s\": %.2f}",
                    trainer.step, st.loss, st.auxLoss, st.lr, st.gradNorm, tokens, el))
            report(
                LoopProgress(
                    step: s + 1, steps: steps, stats: st, tokensPerSecond: Double(tokens) / el,
                    eta: el / Double(s + 1 - first) * Double(steps - s - 1), epochs: source.epochs,
                    stepSeconds: monotonicSeconds() - stepStart))
            try afterStep(s + 1)
            if shouldStop() && s + 1 < steps { return false }
        }
        return true
    }

    public var logText: String { log.joined(separator: "\n") + "\n" }
}

/// The same batches forever, in turn (benchmarks time steps on fixed data).
public final class RepeatingSource: BatchSource {
    public let batches: [TokenBatch]
    public private(set) var cursor = 0
    public init(_ batch: TokenBatch) { batches = [batch] }
    public init(_ batches: [TokenBatch]) {
        precondition(!batches.isEmpty, "RepeatingSource needs a batch")
        self.batches = batches
    }
    public func nextBatch(sequences: Int) -> TokenBatch { nextBatch(tokens: 0) }
    public func nextBatch(tokens: Int) -> TokenBatch {
        defer { cursor += 1 }
        return batches[cursor % batches.count]
    }
    public func seek(_ c: Int) { cursor = c }
    public var epochs: Double { Double(cursor) / Double(batches.count) }
}
