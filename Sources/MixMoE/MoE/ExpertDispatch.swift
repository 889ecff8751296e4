import Foundation

/// The n SwiGLU experts of one group and the dropless dispatch to them (the role of mlx-lm's
/// `SwitchGLU`): gather each expert's rows, run its projections as GEMMs over those rows only,
/// and scatter the weighted outputs back per token. Expert e is the e-th `d_ff / n` slice of the
/// dense FFN it was upcycled from (or, with copy upcycling, a full copy of it).
public final class ExpertDispatch: @unchecked Sendable {
    public let n: Int, d: Int, s: Int
    public let gate: [Param], up: [Param], down: [Param]  // per expert: [s, d], [s, d], [d, s]

    private var capRows = 0, cap = 0
    private var xg = FloatBuffer(count: 0)  // [R, d] gathered inputs (R = N * k rows)
    private var g = FloatBuffer(count: 0)  // [R, s] gate pre-activations (dg in backward)
    private var u = FloatBuffer(count: 0)  // [R, s] up projections (du in backward)
    private var h = FloatBuffer(count: 0)  // [R, s] silu(g) * u
    private var y = FloatBuffer(count: 0)  // [R, d] expert outputs (unweighted)
    private var dy = FloatBuffer(count: 0)  // [R, d] weighted output gradients
    private var dh = FloatBuffer(count: 0)  // [R, s]
    private var dxg = FloatBuffer(count: 0)  // [R, d]
    private(set) var drow = FloatBuffer(count: 0)  // [R] gradient of each row's gate weight
    public private(set) var out = FloatBuffer(count: 0)  // [N, d]

    init(_ store: ParameterStore, prefix: String, experts n: Int, d: Int, width: Int) {
        self.n = n; self.d = d; s = width
        gate = (0..<n).map { Param(store, "\(prefix).\($0).gate_proj.weight") }
        up = (0..<n).map { Param(store, "\(prefix).\($0).up_proj.weight") }
        down = (0..<n).map { Param(store, "\(prefix).\($0).down_proj.weight") }
    }

    var trainable: Bool { gate.contains { $0.trainable } || up.contains { $0.trainable } || down.contains { $0.trainable } }

    func reserve(tokens N: Int, rows R: Int) {
        if R > capRows {
            capRows = R
            xg = FloatBuffer(count: R * d); y = FloatBuffer(count: R * d); dy = FloatBuffer(count: R * d); dxg = FloatBuffer(count: R * d)
            g = FloatBuffer(count: R * s); u = FloatBuffer(count: R * s); h = FloatBuffer(count: R * s); dh = FloatBuffer(count: R * s)
            drow = FloatBuffer(count: R)
        }
        if N > cap { cap = N; out = FloatBuffer(count: N * d) }
    }

    /// `out[t] = sum_j w(t, j) * expert_{e(t, j)}(x[t])` over the routed rows.
    func forward(_ x: UnsafePointer<Float>, routing rt: Routing) {
        let N = rt.tokens, K = rt.k, R = rt.rows, d = d, s = s
        reserve(tokens: N, rows: R)
        let xg = xg.ptr, rowToken = rt.rowToken.ptr
        Parallel.forChunks(R, grain: 64) { r in
            for row in r { (xg + row * d).update(from: x + Int(rowToken[row]) * d, count: d) }
        }
        for e in 0..<n {
            let lo = rt.offsets[e], m = rt.offsets[e + 1] - lo
            guard m > 0 else { continue }
            // g = x Wg^T, u = x Wu^T, h = silu(g) * u, y = h Wd^T on this expert's rows
            gemm(transB: true, M: m, N: s, K: d, A: xg + lo * d, lda: d, B: gate[e].operand, ldb: d, C: g.ptr + lo * s, ldc: s)
            gemm(transB: true, M: m, N: s, K: d, A: xg + lo * d, lda: d, B: up[e].operand, ldb: d, C: u.ptr + lo * s, ldc: s)
            swigluForward(g.ptr + lo * s, u.ptr + lo * s, h.ptr + lo * s, count: m * s)
            gemm(transB: true, M: m, N: d, K: s, A: h.ptr + lo * s, lda: s, B: down[e].operand, ldb: s, C: y.ptr + lo * d, ldc: d)
        }
        // out[t] = sum_j w(t, j) * y[row(t, j)]
        let o = out.ptr, y = y.ptr, tr = rt.tokenRows.ptr, w = rt.rowWeight.ptr
        Parallel.forChunks(N, grain: 64) { r in
            for t in r {
                let dst = o + t * d
                dst.update(repeating: 0, count: d)
                for j in 0..<K {
                    let row = Int(tr[t * K + j]), src = y + row * d, wt = w[row]
                    for c in 0..<d { dst[c] += wt * src[c] }
                }
            }
        }
    }

    /// Backward of `outScale * out`: expert weight gradients when trainable, `drow` (the gradient
    /// of each row's gate weight, for the router), and `dx += ...` when `dx` is given.
    func backward(_ dout: UnsafePointer<Float>, outScale: Float, routing rt: Routing, dx: UnsafeMutablePointer<Float>?) {
        let N = rt.tokens, K = rt.k, R = rt.rows, d = d, s = s
        let w = rt.rowWeight.ptr, yb = y.ptr, dyb = dy.ptr, dr = drow.ptr, rowToken = rt.rowToken.ptr
        // out[t] = sum_j w_j y_j  ->  dy_j = w_j dout[t] * outScale,  dw_j = <dout[t], y_j> * outScale
        Parallel.forChunks(R, grain: 64) { r in
            for row in r {
                let t = Int(rowToken[row]), src = dout + t * d, yr = yb + row * d, dst = dyb + row * d
                let wt = w[row] * outScale
                var dot: Float = 0
                for c in 0..<d { dst[c] = wt * src[c]; dot += src[c] * yr[c] }
                dr[row] = dot * outScale
            }
        }
        for e in 0..<n {
            let lo = rt.offsets[e], m = rt.offsets[e + 1] - lo
            guard m > 0 else { continue }
            let xe = xg.ptr + lo * d, ge = g.ptr + lo * s, ue = u.ptr + lo * s, he = h.ptr + lo * s
            let dhe = dh.ptr + lo * s, dye = dyb + lo * d
            // y = h Wd^T  ->  dh = dy Wd, dWd += dy^T h
            gemm(transB: false, M: m, N: s, K: d, A: dye, lda: d, B: down[e].operand, ldb: s, C: dhe, ldc: s)
            if down[e].trainable {
                sgemm(transA: true, transB: false, M: d, N: s, K: m, A: dye, lda: d, B: he, ldb: s, beta: 1, C: down[e].g, ldc: s)
            }
            // h = silu(g) * u  ->  dg, du (written over g and u)
            swigluBackward(ge, ue, dhe, count: m * s)
            // g = x Wg^T, u = x Wu^T  ->  dx = dg Wg + du Wu, dWg += dg^T x, dWu += du^T x
            if dx != nil {
                gemm(transB: false, M: m, N: d, K: s, A: ge, lda: s, B: gate[e].operand, ldb: d, C: dxg.ptr + lo * d, ldc: d)
                gemm(transB: false, M: m, N: d, K: s, A: ue, lda: s, B: up[e].operand, ldb: d, beta: 1, C: dxg.ptr + lo * d, ldc: d)
            }
            if gate[e].trainable {
                sgemm(transA: true, transB: false, M: s, N: d, K: m, A: ge, lda: s, B: xe, ldb: d, beta: 1, C: gate[e].g, ldc: d)
            }
            if up[e].trainable {
                sgemm(transA: true, transB: false, M: s, N: d, K: m, A: ue, lda: s, B: xe, ldb: d, beta: 1, C: up[e].g, ldc: d)
            }
        }
        // x[t] was gathered into rows row(t, j)  ->  dx[t] += sum_j dxg[row(t, j)]
        if let dx {
            let dxg = dxg.ptr, tr = rt.tokenRows.ptr
            Parallel.forChunks(N, grain: 64) { r in
                for t in r {
                    let dst = dx + t * d
                    for j in 0..<K { let src = dxg + Int(tr[t * K + j]) * d; for c in 0..<d { dst[c] += src[c] } }
                }
            }
        }
    }
}
