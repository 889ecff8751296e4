import Foundation

/// A `[batch, seq]` block of token ids with next-token targets (negative = no loss).
public struct TokenBatch: Sendable {
    public var ids: [Int32]
    public var targets: [Int32]
    public var batch: Int
    public var seq: Int
    /// 1 = real token, 0 = padding (excluded from MoE load balance); nil = all real.
    public var mask: [Float]?
    public init(ids: [Int32], targets: [Int32], mask: [Float]? = nil, batch: Int, seq: Int) {
        precondition(ids.count == batch * seq && targets.count == ids.count, "batch shape mismatch")
        precondition(mask == nil || mask!.count == ids.count, "mask shape mismatch")
        self.ids = ids; self.targets = targets; self.mask = mask; self.batch = batch; self.seq = seq
    }
    public var validTokens: Int { targets.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) } }
}

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
public final class Trainer: @unchecked Sendable {
    public let model: DecoderModel
    public let optimizer: AdamW
    public var schedule: CosineSchedule
    public var clipNorm: Double
    public private(set) var step = 0

    public init(model: DecoderModel, schedule: CosineSchedule, weightDecay: Float = 0, clipNorm: Double = 1) {
        self.model = model
        optimizer = AdamW(store: model.store, weightDecay: weightDecay)
        self.schedule = schedule
        self.clipNorm = clipNorm
    }

    /// Continues a run from a checkpoint at optimiser step `s`.
    public func restore(step s: Int) {
        step = s
        optimizer.restore(step: s)
    }

    /// Single process: nothing to reduce. Data parallelism would all-reduce the trainable
    /// gradients here, and only here (docs/DESIGN.md, "Data parallelism").
    func reduceGradients() {}

    /// Runs one optimiser step over `micro` (the accumulated batch). The loss is the token mean
    /// over all micro-batches, so accumulation equals one large batch.
    @discardableResult
    public func trainStep(_ micro: [TokenBatch]) throws -> StepStats {
        let total = micro.reduce(0) { $0 + $1.validTokens }
        precondition(total > 0, "a training step needs at least one target token")
        model.store.zeroGrads()
        var lossSum = 0.0, aux = 0.0
        let lbPerLayer = (model.config.mixMoE?.lbCoef ?? 0) / Double(max(1, model.moeLayers.count))
        for mb in micro {
            let share = Double(mb.validTokens) / Double(total)
            try model.setBatch(ids: mb.ids, targets: mb.targets, mask: mb.mask, batch: mb.batch, seq: mb.seq)
            model.forward(batch: mb.batch, seq: mb.seq)
            lossSum += model.loss(batch: mb.batch, seq: mb.seq).sum
            aux += share * model.auxLoss
            model.moe.lbWeight = Float(lbPerLayer * share)
            model.backward(batch: mb.batch, seq: mb.seq, lossScale: 1 / Float(total))
        }
        reduceGradients()
        let loss = lossSum / Double(total)
        let badGrad = Gradients.firstNonFinite(model.store)
        if !loss.isFinite || badGrad != nil {
            let what = [loss.isFinite ? nil : "the loss (\(loss))", badGrad.map { "the gradient of \($0)" }].compactMap { $0 }
            throw TrainingError.nonFinite(step: step + 1, what: what.joined(separator: " and "))
        }
        let norm = Gradients.clip(model.store, maxNorm: clipNorm)
        let lr = schedule.lr(step: step)
        Profile.measure("optimizer") { optimizer.update(lr: Float(lr)) }
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
