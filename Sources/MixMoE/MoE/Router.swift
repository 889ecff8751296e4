import Foundation

/// Which rows of the gathered expert buffers belong to which token and expert: the routing
/// decision of one forward pass, written by ``Router`` and read by ``ExpertDispatch``.
/// Rows are grouped by expert (expert e owns rows `offsets[e]..<offsets[e+1]`), in token order.
public final class Routing: @unchecked Sendable {
    /// Experts selected per token in this pass (top-k, or all n when every expert is forced on).
    public internal(set) var k = 1
    public internal(set) var tokens = 0
    var offsets: [Int] = []  // [n+1] first row of each expert
    var tokenRows = IntBuffer(count: 0)  // [N, k] row of each (token, slot)
    var rowToken = IntBuffer(count: 0)  // [N*k] token of each row
    var rowExpert = IntBuffer(count: 0)  // [N*k] expert of each row
    var rowWeight = FloatBuffer(count: 0)  // [N*k] gate weight scale * p of each row
    var rows: Int { tokens * k }

    init(experts n: Int) { offsets = Array(repeating: 0, count: n + 1) }

    func reserve(rows R: Int) {
        guard R > rowToken.count else { return }
        tokenRows = IntBuffer(count: R); rowToken = IntBuffer(count: R); rowExpert = IntBuffer(count: R)
        rowWeight = FloatBuffer(count: R)
    }
}

/// The router of one expert group (paper III-B; docs/DESIGN.md, "Routers"):
/// `logits = W [h ; T h] + b`, `p = softmax(logits)`, top-k experts per token, gate weight
/// `scale * p` (not renormalised), and the Switch load-balance loss `L = n * sum_i f_i P_i`
/// over real tokens (f from the top-1 choice, P the mean probability).
///
/// Because `T` is linear the router folds it into its weights, `W_eff = W1 + W2 T`, so routing
/// costs one `[N, d] x [d, n]` GEMM; `MoEContext.explicitRouter` runs the reference path that
/// forms `[h ; T h]` (tests compare the two).
public final class Router: @unchecked Sendable {
    public let n: Int, k: Int, d: Int
    public let scale: Float
    /// Copy upcycling: the selected experts' weights are `p_e / sum of the selected p` (sum to one).
    public let renormalize: Bool
    /// What the load-balance loss counts.
    public let balance: LoadBalance
    public let weight: Param  // [n, F]; columns 0..<d act on h, d..<2d on T h
    public let bias: Param  // [n]
    let transform: UnsafePointer<Float>?  // [d, d], f = T h; nil for `none`
    let transformOwner: AnyObject?  // keeps the buffer behind `transform` alive
    let context: MoEContext
    public let routing: Routing
    /// Load-balance loss of the last forward.
    public private(set) var lbLoss: Double = 0
    /// MoE-LPR's language-prior routing loss of the last forward: the mean over masked tokens of
    /// the cross-entropy of expert 0 (0 without a mask or masked tokens).
    public private(set) var lprLoss: Double = 0
    public var stats: [String: ExpertStats] = [:]

    private var cap = 0
    private var weff: FloatBuffer  // [n, d] folded router weights
    private var gFold: FloatBuffer  // [n, d] G = dlogits^T h (folded backward)
    private var feats = FloatBuffer(count: 0)  // [N, 2d] explicit router input (reference path)
    private var dfeats = FloatBuffer(count: 0)  // [N, 2d]
    private(set) var probs = FloatBuffer(count: 0)  // [N, n]
    private var dprobs = FloatBuffer(count: 0)  // [N, n] gradient of probs, then of logits
    private var top1 = IntBuffer(count: 0)  // [N] top-1 expert per token
    private var fTop = [Double]()  // [n] selection fractions of the last forward (top-1, or every slot)
    private var lprTokens = 0  // masked tokens of the last forward

    init(
        _ store: ParameterStore, prefix: String, cfg: MixMoEConfig, d: Int, transform: UnsafePointer<Float>?,
        transformOwner: AnyObject?, context: MoEContext
    ) {
        n = cfg.expertsPerGroup; k = cfg.topK; self.d = d
        scale = Float(cfg.gateScale)
        renormalize = cfg.upcycle == .copy
        balance = cfg.loadBalance
        weight = Param(store, "\(prefix).weight")
        bias = Param(store, "\(prefix).bias")
        self.transform = transform
        self.transformOwner = transformOwner
        self.context = context
        routing = Routing(experts: n)
        weff = FloatBuffer(count: n * d)
        gFold = FloatBuffer(count: n * d)
    }

    var trainable: Bool { weight.trainable || bias.trainable }

    func reserve(tokens N: Int) {
        routing.reserve(rows: N * k)
        guard N > cap else { return }
        cap = N
        feats = FloatBuffer(count: N * 2 * d); dfeats = FloatBuffer(count: N * 2 * d)
        probs = FloatBuffer(count: N * n); dprobs = FloatBuffer(count: N * n); top1 = IntBuffer(count: N)
    }

    // MARK: forward

    /// logits -> probabilities -> top-k rows and weights (into `routing`) -> load-balance loss.
    func forward(_ x: UnsafePointer<Float>, n N: Int) {
        reserve(tokens: N)
        let n = n, P = probs.ptr
        if context.explicitRouter, let T = transform {
            // reference: feats = [h ; h T^T], logits = feats W^T
            let f = feats.ptr, d = d
            for t in 0..<N { (f + t * 2 * d).update(from: x + t * d, count: d) }
            sgemm(transA: false, transB: true, M: N, N: d, K: d, A: x, lda: d, B: T, ldb: d, C: f + d, ldc: 2 * d)
            sgemm(transA: false, transB: true, M: N, N: n, K: 2 * d, A: f, lda: 2 * d, B: weight.w, ldb: 2 * d, C: P, ldc: n)
        } else {
            fold()
            // logits = h W_eff^T  (one GEMM, as cheap as a plain linear router)
            sgemm(transA: false, transB: true, M: N, N: n, K: d, A: x, lda: d, B: weff.ptr, ldb: d, C: P, ldc: n)
        }
        // p = softmax(logits + b)
        let b = bias.w
        Parallel.forChunks(N, grain: 256) { r in
            for t in r {
                let row = P + t * n
                for i in 0..<n { row[i] += b[i] }
                VectorMath.softmax(row, n)
            }
        }
        selectTopK(N)
        loadBalance(N)
        languagePrior(N)
        if context.collectStats { collect(N) }
    }

    /// MoE-LPR's language-prior routing loss (Zhou et al. 2024, as its reference code computes
    /// it): `CrossEntropy(p, expert 0)` over the masked tokens, where the cross-entropy takes the
    /// router *probabilities* p as its logits (the reference stacks the layers' softmax outputs
    /// and passes them to `CrossEntropyLoss`): `L = mean_t (-p_0 + log sum_i exp p_i)`.
    private func languagePrior(_ N: Int) {
        lprLoss = 0; lprTokens = 0
        guard let mask = context.lprMask else { return }
        var sum = 0.0
        for t in 0..<N where mask[t] > 0 {
            let p = probs.ptr + t * n
            var lse = 0.0
            for i in 0..<n { lse += exp(Double(p[i])) }
            sum += Double(mask[t]) * (log(lse) - Double(p[0]))
            lprTokens += 1
        }
        if lprTokens > 0 { lprLoss = sum / Double(lprTokens) }
    }

    /// W_eff = W1 + W2 T: W1 = columns 0..<d of the router weight, W2 = columns d..<2d.
    private func fold() {
        let W = weight.w, E = weff.ptr, d = d
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
        let n = n, k = k, P = probs.ptr, rt = routing
        rt.k = k; rt.tokens = N
        var chosen = [Int32](repeating: 0, count: N * k)
        var counts = [Int](repeating: 0, count: n)
        for t in 0..<N {
            let row = P + t * n
            for j in 0..<k {
                var best = -1
                for i in 0..<n {
                    var taken = false
                    for q in 0..<j where chosen[t * k + q] == Int32(i) { taken = true }
                    if !taken && (best < 0 || row[i] > row[best]) { best = i }
                }
                chosen[t * k + j] = Int32(best)
            }
            var b1 = 0
            for i in 1..<max(n, 1) where row[i] > row[b1] { b1 = i }
            top1.ptr[t] = Int32(b1)
            for j in 0..<k { counts[Int(chosen[t * k + j])] += 1 }
        }
        rt.offsets[0] = 0
        for e in 0..<n { rt.offsets[e + 1] = rt.offsets[e] + counts[e] }
        var fill = Array(rt.offsets.prefix(n))
        for t in 0..<N {
            var selected: Float = 0  // sum of the selected probabilities (copy upcycling)
            for j in 0..<k { selected += P[t * n + Int(chosen[t * k + j])] }
            for j in 0..<k {
                let e = Int(chosen[t * k + j]), r = fill[e]
                fill[e] += 1
                rt.rowToken.ptr[r] = Int32(t)
                rt.rowExpert.ptr[r] = Int32(e)
                rt.rowWeight.ptr[r] = renormalize ? P[t * n + e] / selected : scale * P[t * n + e]
                rt.tokenRows.ptr[t * k + j] = Int32(r)
            }
        }
    }

    /// Load balance `L = n * sum_i f_i P_i` over real tokens, f from the top-1 choice (Switch) or
    /// from every selected slot (Mixtral).
    private func loadBalance(_ N: Int) {
        var f = [Double](repeating: 0, count: n), P = [Double](repeating: 0, count: n)
        var real = 0.0
        for t in 0..<N {
            let m = context.realMask.map { Double($0[t]) } ?? 1
            guard m > 0 else { continue }
            real += m
            if balance == .allSelected {
                // Mixtral's f: every slot's selection (sum_i f_i = k)
                let rt = routing
                for j in 0..<rt.k { f[Int(rt.rowExpert.ptr[Int(rt.tokenRows.ptr[t * rt.k + j])])] += m }
            } else {
                f[Int(top1.ptr[t])] += m
            }
            for i in 0..<n { P[i] += m * Double(probs.ptr[t * n + i]) }
        }
        if real > 0 { for i in 0..<n { f[i] /= real; P[i] /= real } }
        fTop = f
        lbLoss = Double(n) * zip(f, P).reduce(0) { $0 + $1.0 * $1.1 }
    }

    private func collect(_ N: Int) {
        var st = stats[context.statsLabel] ?? ExpertStats(experts: n)
        let rt = routing
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
            for j in 0..<rt.k { st.selected[Int(rt.rowExpert.ptr[Int(rt.tokenRows.ptr[t * rt.k + j])])] += 1 }
        }
        stats[context.statsLabel] = st
    }

    // MARK: backward

    /// Given `drow` (the gradient of each routed row's weight `w = scale * p_e`), adds the
    /// load-balance term, differentiates the softmax and the (folded or explicit) linear map:
    /// router weight gradients when trainable, `dx += ...` when `dx` is given.
    func backward(drow: UnsafePointer<Float>, x: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?, n N: Int) {
        let n = n, K = k, d = d, P = probs.ptr, dP = dprobs.ptr
        let scale = scale, tr = routing.tokenRows.ptr, re = routing.rowExpert.ptr, w = routing.rowWeight.ptr
        let renormalize = renormalize
        var real = 0.0
        for t in 0..<N { real += context.realMask.map { Double($0[t]) } ?? 1 }
        let lbScale = real > 0 ? context.lbWeight * Float(n) / Float(real) : 0
        let fTop = fTop.map(Float.init), mask = context.realMask
        let lprMask = context.lprMask, lprScale = lprTokens > 0 ? context.lprWeight / Float(lprTokens) : 0
        Parallel.forChunks(N, grain: 256) { r in
            for t in r {
                let dp = dP + t * n, p = P + t * n
                let m: Float = mask.map { $0[t] } ?? 1
                for i in 0..<n { dp[i] = lbScale * m * fTop[i] }  // L_LB = n sum_i f_i mean_t p_i
                if let lprMask, lprMask[t] > 0, lprScale != 0 {
                    // L_LPR = mean_t (log sum_i exp p_i - p_0)  ->  dp_i += (softmax(p)_i - [i = 0]) / #masked
                    var z: Float = 0
                    for i in 0..<n { z += exp(p[i]) }
                    let w = lprScale * lprMask[t]
                    for i in 0..<n { dp[i] += w * (exp(p[i]) / z - (i == 0 ? 1 : 0)) }
                }
                if renormalize {
                    // w_j = p_j / S, S = sum of the selected p  ->  dp_i += (drow_i - sum_j drow_j w_j) / S
                    var S: Float = 0, dot: Float = 0
                    for j in 0..<K { let row = Int(tr[t * K + j]); S += p[Int(re[row])]; dot += drow[row] * w[row] }
                    for j in 0..<K { let row = Int(tr[t * K + j]); dp[Int(re[row])] += (drow[row] - dot) / S }
                } else {
                    for j in 0..<K { let row = Int(tr[t * K + j]); dp[Int(re[row])] += scale * drow[row] }  // w = scale * p_e
                }
                var dot: Float = 0
                for i in 0..<n { dot += p[i] * dp[i] }
                for i in 0..<n { dp[i] = p[i] * (dp[i] - dot) }  // p = softmax(logits)
            }
        }
        if bias.trainable { addColumnSums(bias.g, dP, rows: N, cols: n) }
        if context.explicitRouter, let T = transform {
            // logits = feats W^T  ->  dW += dlogits^T feats, dfeats = dlogits W, dx += dfeats_h + dfeats_f T
            if weight.trainable {
                sgemm(transA: true, transB: false, M: n, N: 2 * d, K: N, A: dP, lda: n, B: feats.ptr, ldb: 2 * d, beta: 1, C: weight.g, ldc: 2 * d)
            }
            if let dx {
                sgemm(transA: false, transB: false, M: N, N: 2 * d, K: n, A: dP, lda: n, B: weight.w, ldb: 2 * d, C: dfeats.ptr, ldc: 2 * d)
                for t in 0..<N { for c in 0..<d { dx[t * d + c] += dfeats.ptr[t * 2 * d + c] } }
                sgemm(transA: false, transB: false, M: N, N: d, K: d, A: dfeats.ptr + d, lda: 2 * d, B: T, ldb: d, beta: 1, C: dx, ldc: d)
            }
            return
        }
        // logits = h W_eff^T  ->  G = dlogits^T h, dW1 += G, dW2 += G T^T, dx += dlogits W_eff
        if weight.trainable {
            let G = gFold.ptr
            sgemm(transA: true, transB: false, M: n, N: d, K: N, A: dP, lda: n, B: x, ldb: d, C: G, ldc: d)
            let Wg = weight.g
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
