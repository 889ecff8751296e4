import Foundation

/// Keys and values of one layer for `batch` sequences of up to `maxLen` positions (after rotary).
public final class LayerCache: @unchecked Sendable {
    public let maxLen: Int, batch: Int, kd: Int
    public let k: FloatBuffer  // [batch, maxLen, kvHeads * hd]
    public let v: FloatBuffer
    /// Attention MoE: `[batch, maxLen, experts]`, 1 where the position's token selected the expert.
    public let keep: FloatBuffer?
    public let experts: Int
    public init(batch: Int, maxLen: Int, kd: Int, experts: Int = 0) {
        self.batch = batch; self.maxLen = maxLen; self.kd = kd; self.experts = experts
        k = FloatBuffer(count: batch * maxLen * kd); v = FloatBuffer(count: batch * maxLen * kd)
        keep = experts > 0 ? FloatBuffer(count: batch * maxLen * experts) : nil
    }

    /// Row `dst` takes row `src`'s first `len` positions (a beam that forks from another).
    public func copy(row src: Int, to dst: Int, len: Int) {
        precondition(src < batch && dst < batch && len <= maxLen && src != dst)
        (k.ptr + dst * maxLen * kd).update(from: k.ptr + src * maxLen * kd, count: len * kd)
        (v.ptr + dst * maxLen * kd).update(from: v.ptr + src * maxLen * kd, count: len * kd)
        if let keep { (keep.ptr + dst * maxLen * experts).update(from: keep.ptr + src * maxLen * experts, count: len * experts) }
    }
}

/// Row-wise softmax of `[T, T]` scores with a causal mask (row i sees columns 0...i), in place.
/// Serial: it runs inside per-head parallel tasks.
func causalSoftmaxRowsSerial(_ P: UnsafeMutablePointer<Float>, T: Int) {
    do {
        for i in 0..<T {
            let row = P + i * T
            VectorMath.softmax(row, i + 1)
            for j in (i + 1)..<T { row[j] = 0 }
        }
    }
}

/// dS = P * (dP - sum_j P dP), in place on `dP` (entries above the diagonal come out 0 since P = 0).
func softmaxBackwardRowsSerial(_ P: UnsafePointer<Float>, _ dP: UnsafeMutablePointer<Float>, T: Int) {
    do {
        for i in 0..<T {
            let p = P + i * T, d = dP + i * T
            var dot: Float = 0
            for j in 0...i { dot += p[j] * d[j] }
            for j in 0..<T { d[j] = p[j] * (d[j] - dot) }
        }
    }
}
