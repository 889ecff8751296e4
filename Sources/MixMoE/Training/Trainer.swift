import Foundation

/// What one optimiser step did.
public struct StepStats: Sendable {
    public var loss: Double  // token-mean cross-entropy over the accumulated batch
    public var auxLoss: Double = 0  // MoE load-balance term (lambda-weighted), token-weighted over micro-batches
    public var tokens: Int  // tokens with a loss
    public var gradNorm: Double  // before clipping
    public var lr: Double
}

/// Errors that stop a training run.
public enum TrainingError: LocalizedError {
    case nonFinite(step: Int, what: String)
    public var errorDescription: String? {
        switch self {
        case .nonFinite(let s, let w):
            return "step \(s): \(w) is NaN or Inf; the run stopped before updating the weights. Hint: lower --lr or check the data."
        }
    }
}

/// One optimiser step = gradient accumulation over micro-batches, gradient reduction, clipping,
/// AdamW. Gradient reduction across processes (data parallelism) has exactly one place:
/// `reduceGradients`.
///
/// Under data parallelism every rank runs `trainStep` with its own micro-batches of the global
/// step and the result is the single-process step on all of them: the loss is normalised by the
/// global token count (all-reduced first: translation batches differ in length, so a mean of
/// per-rank means would be wrong), each micro-batch's load-balance term keeps its global token
/// share, the summed gradients are the global gradient, and clipping then sees the global norm.
public final class Trainer: @unchecked Sendable {
    public let model: DecoderModel
    public let optimizer: AdamW
    public var schedule: CosineSchedule
    public var clipNorm: Double
    public private(set) var step = 0
    /// Called right after the gradients are reduced (before clipping) with the reduced trainable
    /// gradients in the store's layout: tests compare several ranks' with one process's.
    public var afterReduce: ((ParameterStore, UnsafePointer<Float>) throws -> Void)?
    /// The ranks this trainer steps with (``SingleProcess``: alone).
    public let collective: Collective
    private let reducer: GradientReducer
    /// ZeRO-1: this rank's shard of the optimiser state (nil: every rank holds all of it).
    let shard: OptimizerShard?
    /// Moments a resume read on rank 0 (every trainable value, packed), for
    /// `synchronizeFromRoot` to scatter into the shards.
    var restoredMoments: (m: FloatBuffer, v: FloatBuffer)?

    /// `shardOptimizer`: ZeRO-1 (``OptimizerShard``); trainable flags must be final by now.
    public init(
        model: DecoderModel, schedule: CosineSchedule, weightDecay: Float = 0, clipNorm: Double = 1,
        collective: Collective = SingleProcess(), shardOptimizer: Bool = false
    ) {
        self.model = model
        shard = shardOptimizer ? OptimizerShard(store: model.store, collective: collective) : nil
        optimizer =
            shard.map { AdamW(store: model.store, segments: $0.segments, momentCount: $0.momentCount, weightDecay: weightDecay) }
            ?? AdamW(store: model.store, weightDecay: weightDecay)
        self.schedule = schedule
        self.clipNorm = clipNorm
        self.collective = collective
        reducer = GradientReducer(collective: collective)
    }

    /// True when the Adam moments are sharded over the ranks (ZeRO-1).
    public var isSharded: Bool { shard != nil }

    /// Makes every rank start from the root's state: all weights, the trainable views' Adam
    /// moments and the step (after a resume on the root; also guards against ranks that loaded
    /// different weights).
    public func synchronizeFromRoot() {
        let restored = collective.any(restoredMoments != nil)
        if let shard, restored { shard.scatterMoments(restoredMoments, into: optimizer) }
        restoredMoments = nil
        guard collective.size > 1 else { return }
        let store = model.store
        // fp32 views only: views held in bf16 are frozen weights every rank read from the same
        // files, and broadcasting their (released) fp32 range would make it resident again
        for run in store.runs(where: { $0.dtype == .f32 }) {
            collective.broadcast(store.params.ptr + run.lowerBound, count: run.count, root: 0)
        }
        if shard == nil {
            collective.broadcast(optimizer.m.ptr, count: optimizer.m.count, root: 0)
            collective.broadcast(optimizer.v.ptr, count: optimizer.v.count, root: 0)
        }
        let rootStep = Int(collective.broadcast(String(step), root: 0)) ?? step
        if rootStep != step { restore(step: rootStep) }
    }

    /// Both Adam moments of every trainable value (packed in view order) for a checkpoint, on
    /// rank 0 (a collective under ZeRO-1: every rank must call it).
    func momentsForCheckpoint() -> (m: FloatBuffer, v: FloatBuffer)? {
        guard let shard else { return collective.isRoot ? (optimizer.m, optimizer.v) : nil }
        return shard.gatherMoments(optimizer)
    }

    /// Continues a run from a checkpoint at optimiser step `s`.
    public func restore(step s: Int) {
        step = s
        optimizer.restore(step: s)
    }

    /// Sums the trainable gradients over the ranks (one all-reduce; nothing alone). The only place
    /// gradients cross processes (docs/DESIGN.md, "Data parallelism").
    func reduceGradients() {
        if let shard { shard.reduceScatter(model.store) } else { reducer.reduce(model.store) }
    }

    /// Runs one optimiser step over `micro` (the accumulated batch; under data parallelism this
    /// rank's share of it, possibly empty). The loss is the token mean over all micro-batches of
    /// all ranks, so accumulation and data parallelism equal one large batch.
    @discardableResult
    public func trainStep(_ micro: [TokenBatch]) throws -> StepStats {
        // target tokens, and (MoE-LPR) original-language tokens, over all micro-batches of all ranks
        let lprLocal: Double = micro.reduce(0.0) { $0 + Double($1.lprMask?.reduce(0, +) ?? 0) }
        var counts: [Double] = [Double(micro.reduce(0) { $0 + $1.validTokens }), lprLocal]
        collective.allReduce(&counts, op: .sum)
        let total = Int(counts[0]), lprTotal = counts[1]
        precondition(total > 0, "a training step needs at least one target token")
        Profile.measure("zero") { model.store.zeroGrads() }
        var lossSum = 0.0, aux = 0.0
        let lbPerLayer = (model.config.mixMoE?.lbCoef ?? 0) / Double(max(1, model.moeLayers.count))
        let lprPerLayer = (model.config.mixMoE?.lprCoef ?? 0) / Double(max(1, model.moeLayers.count))
        for mb in micro {
            let share = Double(mb.validTokens) / Double(total)
            try model.setBatch(ids: mb.ids, targets: mb.targets, mask: mb.mask, batch: mb.batch, seq: mb.seq)
            // the LPR loss is the mean over the step's original-language tokens
            model.setLPRMask(lprTotal > 0 ? mb.lprMask : nil)
            let lprHere = Double(mb.lprMask?.reduce(0, +) ?? 0)
            model.moe.lprWeight = lprTotal > 0 ? Float(lprPerLayer * lprHere / lprTotal) : 0
            model.forward(batch: mb.batch, seq: mb.seq)
            lossSum += model.loss(batch: mb.batch, seq: mb.seq).sum
            aux += share * model.auxLoss
            model.moe.lbWeight = Float(lbPerLayer * share)
            model.backward(batch: mb.batch, seq: mb.seq, lossScale: 1 / Float(total))
        }
        model.setLPRMask(nil)
        reduceGradients()
        if let afterReduce {
            let full = shard?.gatheredGradients(model.store)
            try withExtendedLifetime(full) { try afterReduce(model.store, UnsafePointer(full?.ptr ?? model.store.grads.ptr)) }
        }
        var sums = [lossSum, aux]
        collective.allReduce(&sums, op: .sum)
        lossSum = sums[0]; aux = sums[1]
        let loss = lossSum / Double(total)
        // what this rank updates: every trainable value, or (ZeRO-1) its shard
        let ranges = shard?.paramRanges ?? Gradients.trainableRanges(model.store)
        var badGrad = Gradients.firstNonFinite(model.store, ranges)
        if shard != nil && collective.any(badGrad != nil) && badGrad == nil { badGrad = "a view on another rank" }
        if !loss.isFinite || badGrad != nil {
            let what = [loss.isFinite ? nil : "the loss (\(loss))", badGrad.map { "the gradient of \($0)" }].compactMap { $0 }
            throw TrainingError.nonFinite(step: step + 1, what: what.joined(separator: " and "))
        }
        var sq = [Gradients.sumOfSquares(model.store, ranges)]
        if shard != nil { collective.allReduce(&sq, op: .sum) }
        let norm = Gradients.clip(model.store, ranges, maxNorm: clipNorm, norm: sq[0].squareRoot())
        let lr = schedule.lr(step: step)
        Profile.measure("optimizer") { optimizer.update(lr: Float(lr)) }
        shard?.allGather(model.store)
        step += 1
        return StepStats(loss: loss, auxLoss: aux, tokens: total, gradNorm: norm, lr: lr)
    }

    /// Mean loss over batches without touching gradients (evaluation / perplexity).
    public func evaluate(_ batches: [TokenBatch]) throws -> (loss: Double, tokens: Int) {
        var sum = 0.0, n = 0
        for b in batches {
            try model.setBatch(ids: b.ids, targets: b.targets, mask: b.mask, batch: b.batch, seq: b.seq)
            model.forward(batch: b.batch, seq: b.seq)
            let (s, c) = model.loss(batch: b.batch, seq: b.seq)
            sum += s; n += c
        }
        return (n > 0 ? sum / Double(n) : .nan, n)
    }
}
