import Foundation

/// SplitMix64: a small, fast, seedable generator whose whole state is one UInt64 (so a checkpoint
/// can record it). Gaussians by Box-Muller.
public struct SplitMix64: RandomNumberGenerator, Sendable, Codable, Equatable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    public mutating func nextUnit() -> Double { (Double(next() >> 11) + 0.5) / 9_007_199_254_740_992 }

    /// `0..<n` in the order of a Fisher-Yates shuffle seeded by `(seed, epoch)`: the per-epoch data
    /// order of every batch source, so a run's position is one integer.
    public static func epochPermutation(_ n: Int, seed: UInt64, epoch: Int) -> [Int] {
        var rng = SplitMix64(seed: seed &+ UInt64(epoch) &* 0x9E37_79B9)
        var o = Array(0..<n)
        if n > 1 { for i in stride(from: n - 1, to: 0, by: -1) { o.swapAt(i, Int(rng.next() % UInt64(i + 1))) } }
        return o
    }

    public mutating func nextGaussian() -> Float {
        let u1 = nextUnit(), u2 = nextUnit()
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }
}
