import Foundation

/// One group of n experts (LM or MT) with its router: `logits = W [h ; T h] + b`, softmax, top-k,
/// weight `scale * p` (un-renormalised), dropless dispatch (rows gathered per expert, one GEMM per
/// expert projection, weighted sum back per token), Switch load-balance loss.
public final class ExpertGroup: @unchecked Sendable {
    public let n: Int, k: Int, d: Int, s: Int
    public let scale: Float
    public let routerW: Param          // [n, F]; columns 0..<d act on h, d..<2d on T h
    public let routerB: Param          // [n]
    public let gate: [Param], up: [Param], down: [Param]   // per expert: [s, d], [s, d], [d, s]
    let transform: UnsafePointer<Float>?   // [d, d], f = T h; nil for `none`
    let transformOwner: AnyObject?         // keeps the buffer behind `transform` alive
    let context: MoEContext
    public var stats: [String: ExpertStats] = [:]
    /// Load-balance loss of the last forward (n * sum f_i P_i over real tokens).
    public private(set) var lbLoss: Double = 0

    private var cap = 0, capRows = 0
    private var weff = FloatBuffer(count: 0)     // [n, d] folded router weights
    private var gRouter = FloatBuffer(count: 0)  // [n, d] G = dlogits^T h (folded backward)
    private var feats = FloatBuffer(count: 0)    // [N, 2d] explicit router input (reference path)
    private var probs = FloatBuffer(count: 0)    // [N, n]
    private var dprobs = FloatBuffer(count: 0)   // [N, n] gradient of probs, then of logits
    private var dfeats = FloatBuffer(count: 0)   // [N, 2d]
    private var tokenRows = IntBuffer(count: 0)  // [N, k] row of each (token, slot) in the gathered buffers
    private var rowToken = IntBuffer(count: 0)   // [N*k] token of each gathered row
    private var rowWeight = FloatBuffer(count: 0) // [N*k] scale * p of each row
    private var rowExpert = IntBuffer(count: 0)  // [N*k] expert of each row
    private var offsets = [Int]()                // [n+1] first row of each expert
    private var top1 = IntBuffer(count: 0)       // [N] top-1 expert per token
    private var xg = FloatBuffer(count: 0)       // [N*k, d] gathered inputs
    private var g = FloatBuffer(count: 0)        // [N*k, s] gate pre-activations (dg in backward)
    private var u = FloatBuffer(count: 0)        // [N*k, s] up projections (du in backward)
    private var h = FloatBuffer(count: 0)        // [N*k, s] silu(g) * u
    private var y = FloatBuffer(count: 0)        // [N*k, d] expert outputs (unweighted)
    private var dyg = FloatBuffer(count: 0)      // [N*k, d] weighted output gradients
    private var dh = FloatBuffer(count: 0)       // [N*k, s]
    private var dxg = FloatBuffer(count: 0)      // [N*k, d]
    private var drow = FloatBuffer(count: 0)     // [N*k] gradient of each row's weight
    public private(set) var out = FloatBuffer(count: 0)  // [N, d]
    private var fTop = [Double]()                // [n] top-1 fractions of the last forward (LB gradient)

    public init(_ store: ParameterStore, prefix: String, group: String, cfg: MixMoEConfig, d: Int, intermediate: Int,
                transform: UnsafePointer<Float>?, transformOwner: AnyObject?, context: MoEContext) {
        n = cfg.expertsPerGroup; k = cfg.topK; self.d = d; s = intermediate / cfg.expertsPerGroup
        scale = Float(cfg.gateScale)
        routerW = Param(store, "\(prefix).\(group)_router.weight")
        routerB = Param(store, "\(prefix).\(group)_router.bias")
        gate = (0..<n).map { Param(store, "\(prefix).\(group)_experts.\($0).gate_proj.weight") }
        up = (0..<n).map { Param(store, "\(prefix).\(group)_experts.\($0).up_proj.weight") }
        down = (0..<n).map { Param(store, "\(prefix).\(group)_experts.\($0).down_proj.weight") }
        self.transform = transform
        self.transformOwner = transformOwner
        self.context = context
        offsets = Array(repeating: 0, count: n + 1)
        weff = FloatBuffer(count: n * d)
        gRouter = FloatBuffer(count: n * d)
    }

    /// Parameter names and shapes of one group (DESIGN's checkpoint layout).
    public static func layout(prefix: String, group: String, cfg: MixMoEConfig, d: Int, intermediate: Int) -> [(String, [Int])] {
        let n = cfg.expertsPerGroup, s = intermediate / n
        var l: [(String, [Int])] = []
        for e in 0..<n {
            let p = "\(prefix).\(group)_experts.\(e)."
            l += [(p + "gate_proj.weight", [s, d]), (p + "up_proj.weight", [s, d]), (p + "down_proj.weight", [d, s])]
        }
        l += [("\(prefix).\(group)_router.weight", [n, cfg.routerInputWidth(d)]), ("\(prefix).\(group)_router.bias", [n])]
        return l
    }

    var routerTrainable: Bool { routerW.trainable || routerB.trainable }
    var expertsTrainable: Bool { gate.contains { $0.trainable } || up.contains { $0.trainable } || down.contains { $0.trainable } }
    public var anyTrainable: Bool { routerTrainable || expertsTrainable }
    var F: Int { transform == nil ? d : 2 * d }

    public func reserve(tokens N: Int) {
        let R0 = N * activeK
        guard N > cap || R0 > capRows else { return }
        cap = max(cap, N); capRows = max(capRows, R0)
        let N = cap, R = capRows  // never shrink: sizes only grow
        feats = FloatBuffer(count: N * 2 * d); dfeats = FloatBuffer(count: N * 2 * d)
        probs = FloatBuffer(count: N * n); dprobs = FloatBuffer(count: N * n)
        tokenRows = IntBuffer(count: R); rowToken = IntBuffer(count: R); rowExpert = IntBuffer(count: R)
        rowWeight = FloatBuffer(count: R); drow = FloatBuffer(count: R); top1 = IntBuffer(count: N)
        xg = FloatBuffer(count: R * d); y = FloatBuffer(count: R * d); dyg = FloatBuffer(count: R * d); dxg = FloatBuffer(count: R * d)
        g = FloatBuffer(count: R * s); u = FloatBuffer(count: R * s); h = FloatBuffer(count: R * s); dh = FloatBuffer(count: R * s)
        out = FloatBuffer(count: N * d)
    }

    // MARK: forward

    public func forward(_ x: UnsafePointer<Float>, n N: Int) {
        reserve(tokens: N)
        Profile.measure("router") { route(x, N) }
        dispatchForward(x, N)
        loadBalance(N)
        if context.collectStats { collect(N) }
    }

    /// logits -> probs (softmax over the group), top-k rows and weights.
    private func route(_ x: UnsafePointer<Float>, _ N: Int) {
        let n = n, P = probs.ptr
        if context.explicitRouter, let T = transform {
            // reference: feats = [h ; h T^T], logits = feats W^T + b
            let f = feats.ptr, d = d
            for t in 0..<N { (f + t * 2 * d).update(from: x + t * d, count: d) }
            sgemm(transA: false, transB: true, M: N, N: d, K: d, A: x, lda: d, B: T, ldb: d, C: f + d, ldc: 2 * d)
            sgemm(transA: false, transB: true, M: N, N: n, K: 2 * d, A: f, lda: 2 * d, B: routerW.w, ldb: 2 * d, C: P, ldc: n)
        } else {
            foldRouter()
            // logits = h W_eff^T + b  (one GEMM, as cheap as a plain linear router)
            sgemm(transA: false, transB: true, M: N, N: n, K: d, A: x, lda: d, B: weff.ptr, ldb: d, C: P, ldc: n)
        }
        let b = routerB.w
        Parallel.forChunks(N, grain: 256) { r in
            for t in r {
                let row = P + t * n
                var m = -Float.infinity
                for i in 0..<n { row[i] += b[i]; m = max(m, row[i]) }
                var sum: Float = 0
                for i in 0..<n { row[i] = expf(row[i] - m); sum += row[i] }
                for i in 0..<n { row[i] /= sum }
            }
        }
        selectTopK(N)
    }

    /// W_eff = W1 + W2 T: W1 = columns 0..<d of the router weight, W2 = columns d..<2d.
    private func foldRouter() {
        let W = routerW.w, E = weff.ptr, d = d
        if let T = transform {
            for r in 0..<n { (E + r * d).update(from: W + r * 2 * d, count: d) }
            sgemm(transA: false, transB: false, M: n, N: d, K: d, A: W + d, lda: 2 * d, B: T, ldb: d, beta: 1, C: E, ldc: d)
        } else {
            E.update(from: W, count: n * d)
        }
    }

    /// Picks k experts per token (largest p, lower index on ties), lays rows out grouped by expert
    /// in token order, and records each row's weight.
    private func selectTopK(_ N: Int) {
        let n = n, k = activeK
        let P = probs.ptr
        var chosen = [Int32](repeating: 0, count: N * k)
        var counts = [Int](repeating: 0, count: n)
        for t in 0..<N {
            let row = P + t * n
            if context.forceAllExperts {
                for i in 0..<n { chosen[t * k + i] = Int32(i) }
            } else {
                for j in 0..<k {
                    var best = -1
                    for i in 0..<n {
                        var taken = false
                        for q in 0..<j where chosen[t * k + q] == Int32(i) { taken = true }
                        if !taken && (best < 0 || row[i] > row[best]) { best = i }
                    }
                    chosen[t * k + j] = Int32(best)
                }
            }
            var b1 = 0
            for i in 1..<max(n, 1) where row[i] > row[b1] { b1 = i }
            top1.ptr[t] = Int32(b1)
            for j in 0..<k { counts[Int(chosen[t * k + j])] += 1 }
        }
        offsets[0] = 0
        for e in 0..<n { offsets[e + 1] = offsets[e] + counts[e] }
        var fill = Array(offsets.prefix(n))
        for t in 0..<N {
            for j in 0..<k {
                let e = Int(chosen[t * k + j]), r = fill[e]
                fill[e] += 1
                rowToken.ptr[r] = Int32(t)
                rowExpert.ptr[r] = Int32(e)
                rowWeight.ptr[r] = context.forceAllExperts ? 1 : scale * P[t * n + e]
                tokenRows.ptr[t * k + j] = Int32(r)
            }
        }
    }

    private var activeK: Int { context.forceAllExperts ? n : k }

    private func dispatchForward(_ x: UnsafePointer<Float>, _ N: Int) {
        let d = d, s = s, R = N * activeK, K = activeK
        let xg = xg.ptr, rowToken = rowToken.ptr
        Parallel.forChunks(R, grain: 64) { r in
            for row in r { (xg + row * d).update(from: x + Int(rowToken[row]) * d, count: d) }
        }
        for e in 0..<n {
            let lo = offsets[e], m = offsets[e + 1] - lo
            guard m > 0 else { continue }
            // g = x Wg^T, u = x Wu^T, h = silu(g) * u, y = h Wd^T on this expert's rows
            sgemm(transA: false, transB: true, M: m, N: s, K: d, A: xg + lo * d, lda: d, B: gate[e].w, ldb: d, C: g.ptr + lo * s, ldc: s)
            sgemm(transA: false, transB: true, M: m, N: s, K: d, A: xg + lo * d, lda: d, B: up[e].w, ldb: d, C: u.ptr + lo * s, ldc: s)
            swigluForward(g.ptr + lo * s, u.ptr + lo * s, h.ptr + lo * s, count: m * s)
            sgemm(transA: false, transB: true, M: m, N: d, K: s, A: h.ptr + lo * s, lda: s, B: down[e].w, ldb: s, C: y.ptr + lo * d, ldc: d)
        }
        // out[t] = sum_j w(t, j) * y[row(t, j)]
        let o = out.ptr, y = y.ptr, tr = tokenRows.ptr, w = rowWeight.ptr
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

    /// Switch load balance: `L = n * sum_i f_i P_i` over real tokens, f from the top-1 choice.
    private func loadBalance(_ N: Int) {
        var f = [Double](repeating: 0, count: n), P = [Double](repeating: 0, count: n)
        var real = 0.0
        for t in 0..<N {
            let m = context.realMask.map { Double($0[t]) } ?? 1
            guard m > 0 else { continue }
            real += m
            f[Int(top1.ptr[t])] += m
            for i in 0..<n { P[i] += m * Double(probs.ptr[t * n + i]) }
        }
        if real > 0 { for i in 0..<n { f[i] /= real; P[i] /= real } }
        fTop = f
        lbLoss = Double(n) * zip(f, P).reduce(0) { $0 + $1.0 * $1.1 }
    }

    private func collect(_ N: Int) {
        var st = stats[context.statsLabel] ?? ExpertStats(experts: n)
        for t in 0..<N {
            if let m = context.realMask, m[t] == 0 { continue }
            st.tokens += 1
            var ent = 0.0
            for i in 0..<n {
                let p = Double(probs.ptr[t * n + i])
                st.probSum[i] += p
                if p > 0 { ent -= p * log(p) }
            }
            st.entropySum += ent
            for j in 0..<activeK { st.selected[Int(rowExpert.ptr[Int(tokenRows.ptr[t * activeK + j])])] += 1 }
        }
        stats[context.statsLabel] = st
    }

    // MARK: backward

    /// Backward of `out` (scaled by `outScale`, the group-combination factor) plus the load-balance
    /// term; parameter gradients for trainable views; `dx += ...` when `dx` is given.
    public func backward(_ dout: UnsafePointer<Float>, outScale: Float, x: UnsafePointer<Float>,
                         dx: UnsafeMutablePointer<Float>?, n N: Int) {
        let needRouter = routerTrainable || (dx != nil && !context.forceAllExperts)
        guard expertsTrainable || needRouter || dx != nil else { return }
        let d = d, s = s, K = activeK, R = N * K
        let tr = tokenRows.ptr, w = rowWeight.ptr, yb = y.ptr, dy = dyg.ptr, dr = drow.ptr, rowToken = rowToken.ptr
        // out[t] = sum_j w_j y_j  ->  dy_j = w_j dout[t] * outScale,  dw_j = <dout[t], y_j> * outScale
        Parallel.forChunks(R, grain: 64) { r in
            for row in r {
                let t = Int(rowToken[row]), src = dout + t * d, yr = yb + row * d, dst = dy + row * d
                let wt = w[row] * outScale
                var dot: Float = 0
                for c in 0..<d { dst[c] = wt * src[c]; dot += src[c] * yr[c] }
                dr[row] = dot * outScale
            }
        }
        let needDxg = dx != nil
        for e in 0..<n {
            let lo = offsets[e], m = offsets[e + 1] - lo
            guard m > 0 else { continue }
            let xe = xg.ptr + lo * d, ge = g.ptr + lo * s, ue = u.ptr + lo * s, he = h.ptr + lo * s
            let dhe = dh.ptr + lo * s, dye = dy + lo * d
            // y = h Wd^T  ->  dh = dy Wd, dWd += dy^T h
            sgemm(transA: false, transB: false, M: m, N: s, K: d, A: dye, lda: d, B: down[e].w, ldb: s, C: dhe, ldc: s)
            if down[e].trainable {
                sgemm(transA: true, transB: false, M: d, N: s, K: m, A: dye, lda: d, B: he, ldb: s, beta: 1, C: down[e].g, ldc: s)
            }
            // h = silu(g) * u  ->  dg, du (written over g and u)
            swigluBackward(ge, ue, dhe, count: m * s)
            // g = x Wg^T, u = x Wu^T  ->  dx = dg Wg + du Wu, dWg += dg^T x, dWu += du^T x
            if needDxg {
                sgemm(transA: false, transB: false, M: m, N: d, K: s, A: ge, lda: s, B: gate[e].w, ldb: d, C: dxg.ptr + lo * d, ldc: d)
                sgemm(transA: false, transB: false, M: m, N: d, K: s, A: ue, lda: s, B: up[e].w, ldb: d, beta: 1, C: dxg.ptr + lo * d, ldc: d)
            }
            if gate[e].trainable {
                sgemm(transA: true, transB: false, M: s, N: d, K: m, A: ge, lda: s, B: xe, ldb: d, beta: 1, C: gate[e].g, ldc: d)
            }
            if up[e].trainable {
                sgemm(transA: true, transB: false, M: s, N: d, K: m, A: ue, lda: s, B: xe, ldb: d, beta: 1, C: up[e].g, ldc: d)
            }
        }
        if let dx {
            let dxg = dxg.ptr
            Parallel.forChunks(N, grain: 64) { r in
                for t in r {
                    let dst = dx + t * d
                    for j in 0..<K { let src = dxg + Int(tr[t * K + j]) * d; for c in 0..<d { dst[c] += src[c] } }
                }
            }
        }
        if needRouter { Profile.measure("router") { routerBackward(x: x, dx: dx, N: N) } }
    }

    /// w = scale * p_e (selected), L_LB = n sum_i f_i mean_t p_i  ->  dp, then softmax backward,
    /// then the (folded or explicit) linear router.
    private func routerBackward(x: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?, N: Int) {
        let n = n, K = activeK, d = d, P = probs.ptr, dP = dprobs.ptr
        let scale = scale, dr = drow.ptr, tr = tokenRows.ptr, re = rowExpert.ptr
        var real = 0.0
        for t in 0..<N { real += context.realMask.map { Double($0[t]) } ?? 1 }
        let lbScale = real > 0 ? context.lbWeight * Float(n) / Float(real) : 0
        let fTop = fTop.map(Float.init), mask = context.realMask
        Parallel.forChunks(N, grain: 256) { r in
            for t in r {
                let dp = dP + t * n, p = P + t * n
                let m: Float = mask.map { $0[t] } ?? 1
                for i in 0..<n { dp[i] = lbScale * m * fTop[i] }           // d L_LB / d p_i(t)
                for j in 0..<K { let row = Int(tr[t * K + j]); dp[Int(re[row])] += scale * dr[row] }
                var dot: Float = 0
                for i in 0..<n { dot += p[i] * dp[i] }
                for i in 0..<n { dp[i] = p[i] * (dp[i] - dot) }           // softmax backward
            }
        }
        if routerB.trainable { addColumnSums(routerB.g, dP, rows: N, cols: n) }
        if context.explicitRouter, let T = transform {
            // logits = feats W^T  ->  dW += dlogits^T feats, dfeats = dlogits W, dx += dfeats_h + dfeats_f T
            if routerW.trainable {
                sgemm(transA: true, transB: false, M: n, N: 2 * d, K: N, A: dP, lda: n, B: feats.ptr, ldb: 2 * d, beta: 1, C: routerW.g, ldc: 2 * d)
            }
            if let dx {
                sgemm(transA: false, transB: false, M: N, N: 2 * d, K: n, A: dP, lda: n, B: routerW.w, ldb: 2 * d, C: dfeats.ptr, ldc: 2 * d)
                for t in 0..<N { for c in 0..<d { dx[t * d + c] += dfeats.ptr[t * 2 * d + c] } }
                sgemm(transA: false, transB: false, M: N, N: d, K: d, A: dfeats.ptr + d, lda: 2 * d, B: T, ldb: d, beta: 1, C: dx, ldc: d)
            }
            return
        }
        // folded: logits = h W_eff^T  ->  G = dlogits^T h, dW1 += G, dW2 += G T^T, dx += dlogits W_eff
        if routerW.trainable {
            let G = gRouter.ptr
            sgemm(transA: true, transB: false, M: n, N: d, K: N, A: dP, lda: n, B: x, ldb: d, C: G, ldc: d)
            let Wg = routerW.g
            if let T = transform {
                for r in 0..<n { for c in 0..<d { Wg[r * 2 * d + c] += G[r * d + c] } }
                sgemm(transA: false, transB: true, M: n, N: d, K: d, A: G, lda: d, B: T, ldb: d, beta: 1, C: Wg + d, ldc: 2 * d)
            } else {
                for i in 0..<(n * d) { Wg[i] += G[i] }
            }
        }
        if let dx {
            sgemm(transA: false, transB: false, M: N, N: d, K: n, A: dP, lda: n, B: weff.ptr, ldb: d, beta: 1, C: dx, ldc: d)
        }
    }
}
