import Foundation

/// What every benchmark shares (`mixmoe bench ...`, the tokenizer benchmark): repetitions timed
/// after warm-up, and the fixed pseudo-random token ids every case feeds its model.
public enum Benchmark {
    /// Runs `body` `warmup` times untimed, then `reps` times timed; the seconds of each timed run.
    public static func timed(reps: Int, warmup: Int, _ body: () throws -> Void) rethrows -> [Double] {
        for _ in 0..<warmup { try body() }
        return try (0..<reps).map { _ in
            let t0 = monotonicSeconds()
            try body()
            return monotonicSeconds() - t0
        }
    }

    /// `n` token ids below `vocab`, the same stream for every case and run (seed 7).
    public static func tokens(_ n: Int, vocab: Int) -> [Int32] {
        var rng = SplitMix64(seed: 7)
        return (0..<n).map { _ in Int32(rng.next() % UInt64(vocab)) }
    }
}
