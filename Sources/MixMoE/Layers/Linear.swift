/// `y = x W^T + b`, the Hugging Face `nn.Linear` convention: weight `[out, in]`, bias `[out]`.
public struct Linear: @unchecked Sendable {
    public let weight: Param  // [outF, inF]
    public let bias: Param?  // [outF]
    public let inF: Int
    public let outF: Int
    /// A LoRA adapter when the store holds `PREFIX.lora_A/B.weight`.
    public let lora: LoRAAdapter?

    public init(_ store: ParameterStore, _ prefix: String, inF: Int, outF: Int, bias: Bool, loraAlpha: Double = 16) {
        weight = Param(store, prefix + ".weight")
        self.bias = bias ? Param(store, prefix + ".bias") : nil
        self.inF = inF
        self.outF = outF
        lora = LoRAAdapter(store, prefix, inF: inF, outF: outF, alpha: loraAlpha)
    }

    public var anyTrainable: Bool { weight.trainable || (bias?.trainable ?? false) || (lora?.anyTrainable ?? false) }

    /// out[n, outF] = inp[n, inF] W^T + b
    public func forward(_ inp: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, n: Int) {
        gemm(transB: true, M: n, N: outF, K: inF, A: inp, lda: inF, B: weight.operand, ldb: inF, C: out, ldc: outF)
        if let b = bias { addRowVector(out, b.w, rows: n, cols: outF) }
        lora?.forward(inp, out, n: n)
    }

    /// Differentiates `out = inp W^T + b`:
    /// `dinp (+)= dout W`, `dW += dout^T inp`, `db += sum_rows(dout)`.
    /// Weight gradients only for trainable views; `dinp` only when given.
    public func backward(
        _ dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
        dinp: UnsafeMutablePointer<Float>?, accumulate: Bool, n: Int
    ) {
        if let dinp {
            gemm(
                transB: false, M: n, N: inF, K: outF, A: dout, lda: outF,
                B: weight.operand, ldb: inF, beta: accumulate ? 1 : 0, C: dinp, ldc: inF)
        }
        if weight.trainable {
            sgemm(
                transA: true, transB: false, M: outF, N: inF, K: n, A: dout, lda: outF,
                B: inp, ldb: inF, beta: 1, C: weight.g, ldc: inF)
        }
        if let b = bias, b.trainable { addColumnSums(b.g, dout, rows: n, cols: outF) }
        lora?.backward(dout, x: inp, dx: dinp, n: n)  // after dinp was written (beta 1 accumulates)
    }
}

/// x[r, :] += v for every row r.
@inline(__always)
func addRowVector(_ x: UnsafeMutablePointer<Float>, _ v: UnsafePointer<Float>, rows: Int, cols: Int) {
    Parallel.forChunks(rows, grain: 64) { range in
        for r in range {
            let row = x + r * cols
            for c in 0..<cols { row[c] += v[c] }
        }
    }
}

/// acc[c] += sum_r x[r, c]. Split by columns so the sum order is fixed whatever the thread count.
@inline(__always)
func addColumnSums(_ acc: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, rows: Int, cols: Int) {
    Parallel.forChunks(cols, grain: 64) { cr in
        for r in 0..<rows {
            let row = x + r * cols
            for c in cr { acc[c] += row[c] }
        }
    }
}
