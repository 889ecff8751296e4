import Foundation

/// Linear warm-up then cosine decay to `minRatio * peak` (docs/DESIGN.md, *Training*: warm-up over 3% of steps).
/// Step `s` is 0-based; warm-up uses `(s + 1) / warmup`, so the first step already learns
/// (transformers' variant starts at exactly 0).
public struct CosineSchedule: Codable, Sendable, Equatable {
    public var peak: Double
    public var totalSteps: Int
    public var warmupSteps: Int
    public var minRatio: Double

    public init(peak: Double, totalSteps: Int, warmupFraction: Double = 0.03, minRatio: Double = 0) {
        self.peak = peak
        self.totalSteps = max(totalSteps, 1)
        warmupSteps = Int((Double(totalSteps) * warmupFraction).rounded())
        self.minRatio = minRatio
    }

    public func lr(step s: Int) -> Double {
        if s < warmupSteps { return peak * Double(s + 1) / Double(warmupSteps) }
        let span = max(1, totalSteps - warmupSteps)
        let progress = min(1, Double(s - warmupSteps) / Double(span))
        return peak * (minRatio + (1 - minRatio) * 0.5 * (1 + cos(Double.pi * progress)))
    }
}
