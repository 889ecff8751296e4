/// Token embedding: `out[t] = E[ids[t]]`, table `[vocab, d]`.
public enum Embedding {
    public static func forward(
        _ table: WeightOperand, ids: UnsafePointer<Int32>,
        out: UnsafeMutablePointer<Float>, n: Int, dim: Int
    ) {
        switch table {
        case .f32(let e):
            Parallel.forChunks(n, grain: 64) { range in
                for t in range { (out + t * dim).update(from: e + Int(ids[t]) * dim, count: dim) }
            }
        case .bf16(let e):
            Parallel.forChunks(n, grain: 64) { range in
                for t in range { BF16.widen(e + Int(ids[t]) * dim, out + t * dim, count: dim) }  // exact
            }
        }
    }

    /// Differentiates `out[t] = E[ids[t]]`: `dE[ids[t]] += dout[t]`. Split by columns, so tokens are
    /// always added in order (deterministic whatever the thread count).
    public static func backward(
        _ dtable: UnsafeMutablePointer<Float>, ids: UnsafePointer<Int32>,
        dout: UnsafePointer<Float>, n: Int, dim: Int
    ) {
        Parallel.forChunks(dim, grain: 32) { cols in
            for t in 0..<n {
                let src = dout + t * dim, dst = dtable + Int(ids[t]) * dim
                for c in cols { dst[c] += src[c] }
            }
        }
    }
}
