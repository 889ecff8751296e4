/// A LoRA adapter on a linear layer (Hu et al. 2021; PEFT's layout): `y += (alpha / r) x A^T B^T`
/// with `A` `[r, in]` (`PREFIX.lora_A.weight`) and `B` `[out, r]` (`PREFIX.lora_B.weight`,
/// zero-initialised so the model is unchanged at the start).
public final class LoRAAdapter: @unchecked Sendable {
    public let a: Param  // [r, in]
    public let b: Param  // [out, r]
    public let r: Int, inF: Int, outF: Int
    public let scale: Float
    private var t = FloatBuffer(count: 0)  // [N, r] x A^T (recomputed in backward)
    private var dt = FloatBuffer(count: 0)  // [N, r]

    public init?(_ store: ParameterStore, _ prefix: String, inF: Int, outF: Int, alpha: Double) {
        guard let ia = store.id(prefix + ".lora_A.weight"), store.id(prefix + ".lora_B.weight") != nil else { return nil }
        a = Param(store, prefix + ".lora_A.weight")
        b = Param(store, prefix + ".lora_B.weight")
        r = store.entries[ia].shape[0]
        self.inF = inF; self.outF = outF
        scale = Float(alpha / Double(r))
    }

    public static func layout(_ prefix: String, inF: Int, outF: Int, r: Int) -> [(String, [Int])] {
        [(prefix + ".lora_A.weight", [r, inF]), (prefix + ".lora_B.weight", [outF, r])]
    }

    var anyTrainable: Bool { a.trainable || b.trainable }

    private func ensure(_ n: Int) {
        if t.count < n * r { t = FloatBuffer(count: n * r); dt = FloatBuffer(count: n * r) }
    }

    /// out += scale * (x A^T) B^T
    func forward(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, n: Int) {
        ensure(n)
        sgemm(transA: false, transB: true, M: n, N: r, K: inF, A: x, lda: inF, B: a.w, ldb: inF, C: t.ptr, ldc: r)
        sgemm(
            transA: false, transB: true, M: n, N: outF, K: r, alpha: scale, A: t.ptr, lda: r, B: b.w, ldb: r,
            beta: 1, C: out, ldc: outF)
    }

    /// Differentiates `out += s (x A^T) B^T` with `t = x A^T`: `dB += s dout^T t`,
    /// `dt = s dout B`, `dA += dt^T x`, `dx += dt A`.
    func backward(_ dout: UnsafePointer<Float>, x: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?, n: Int) {
        guard anyTrainable || dx != nil else { return }
        ensure(n)
        sgemm(transA: false, transB: true, M: n, N: r, K: inF, A: x, lda: inF, B: a.w, ldb: inF, C: t.ptr, ldc: r)
        if b.trainable {
            sgemm(
                transA: true, transB: false, M: outF, N: r, K: n, alpha: scale, A: dout, lda: outF, B: t.ptr, ldb: r,
                beta: 1, C: b.g, ldc: r)
        }
        sgemm(
            transA: false, transB: false, M: n, N: r, K: outF, alpha: scale, A: dout, lda: outF, B: b.w, ldb: r,
            C: dt.ptr, ldc: r)
        if a.trainable {
            sgemm(transA: true, transB: false, M: r, N: inF, K: n, A: dt.ptr, lda: r, B: x, ldb: inF, beta: 1, C: a.g, ldc: inF)
        }
        if let dx {
            sgemm(transA: false, transB: false, M: n, N: inF, K: r, A: dt.ptr, lda: r, B: a.w, ldb: inF, beta: 1, C: dx, ldc: inF)
        }
    }
}
