import Foundation

/// Softmax cross-entropy over `[N, V]` logits with integer targets; a negative target is ignored
/// (padding, or a prompt token in the MT objective).
public enum CrossEntropy {
    /// Returns the summed loss over valid positions and their count. Per-position losses go to `losses`.
    public static func forward(
        _ logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>,
        losses: UnsafeMutablePointer<Float>, n: Int, vocab V: Int
    ) -> (sum: Double, count: Int) {
        Parallel.forChunks(n, grain: 8) { range in
            for t in range {
                let tgt = Int(targets[t])
                guard tgt >= 0 else { losses[t] = 0; continue }
                let row = logits + t * V
                losses[t] = VectorMath.logSumExp(row, V) - row[tgt]  // -log softmax(row)[tgt]
            }
        }
        var sum = 0.0, count = 0
        for t in 0..<n where targets[t] >= 0 { sum += Double(losses[t]); count += 1 }
        return (sum, count)
    }

    /// Differentiates `scale * sum_t loss_t`: `dlogits = scale * (softmax - onehot)`, 0 on ignored
    /// rows. In place: `logits` becomes its gradient. `scale` is 1 / (valid tokens in the whole
    /// accumulated batch) for a token-mean loss.
    public static func backward(
        _ logits: UnsafeMutablePointer<Float>, targets: UnsafePointer<Int32>,
        n: Int, vocab V: Int, scale: Float
    ) {
        Parallel.forChunks(n, grain: 8) { range in
            for t in range {
                let row = logits + t * V, tgt = Int(targets[t])
                guard tgt >= 0 else { row.update(repeating: 0, count: V); continue }
                let m = VectorMath.max(row, V)
                let s = VectorMath.expSum(row, V, shift: m, out: row)
                VectorMath.scale(row, V, by: scale / s)
                row[tgt] -= scale
            }
        }
    }
}
