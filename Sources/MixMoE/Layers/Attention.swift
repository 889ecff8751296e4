import Foundation

/// Grouped-query causal self-attention with rotary embeddings (Llama / Qwen2).
///
/// Per (sequence, head): `S = Q K^T / sqrt(hd)`, causal softmax in fp32, `Y = P V`, each a GEMM on
/// strided views of the `[tokens, heads * hd]` buffers; then `out = Y Wo^T`.
public final class Attention: @unchecked Sendable {
    public let q: Linear, k: Linear, v: Linear, o: Linear
    public let heads: Int, kvHeads: Int, headDim: Int, dim: Int
    let rotary: Rotary
    /// LLaMA-MoE v2's attention MoE (nil: plain attention): each KV head with its query heads is
    /// an expert; the gate picks a token's experts, an expert attends only among its tokens, and
    /// `yg` (the experts' outputs scaled by the gate's weights) goes through o_proj.
    public let experts: AttentionGate?

    // activations for batch b x seq T, N = b*T tokens
    public private(set) var qBuf = FloatBuffer(count: 0)  // [N, heads*hd] after rotary
    public private(set) var kBuf = FloatBuffer(count: 0)  // [N, kvHeads*hd] after rotary
    public private(set) var vBuf = FloatBuffer(count: 0)  // [N, kvHeads*hd]
    public private(set) var att = FloatBuffer(count: 0)  // [b, heads, T, T] softmax probabilities
    public private(set) var y = FloatBuffer(count: 0)  // [N, heads*hd] before o_proj
    private var yg = FloatBuffer(count: 0)  // [N, heads*hd] attention MoE: y * gate weight of each head's expert
    private var dWeights = FloatBuffer(count: 0)  // [N, kvHeads] attention MoE: gradient of the gate's weights
    public private(set) var out = FloatBuffer(count: 0)  // [N, d]
    // backward scratch
    private var dq = FloatBuffer(count: 0), dk = FloatBuffer(count: 0), dv = FloatBuffer(count: 0)
    private var dy = FloatBuffer(count: 0)  // [N, heads*hd]
    private var dAtt = FloatBuffer(count: 0)  // [task slots, T, T] per-task scratch

    public init(_ store: ParameterStore, prefix: String, config c: ModelConfig, rotary: Rotary, experts moe: Bool = false) {
        heads = c.numAttentionHeads; kvHeads = c.numKeyValueHeads; headDim = c.headDim; dim = c.hiddenSize
        let al = c.lora?.alpha ?? 16
        q = Linear(store, prefix + ".q_proj", inF: dim, outF: heads * headDim, bias: c.qkvBias, loraAlpha: al)
        k = Linear(store, prefix + ".k_proj", inF: dim, outF: kvHeads * headDim, bias: c.qkvBias, loraAlpha: al)
        v = Linear(store, prefix + ".v_proj", inF: dim, outF: kvHeads * headDim, bias: c.qkvBias, loraAlpha: al)
        o = Linear(store, prefix + ".o_proj", inF: heads * headDim, outF: dim, bias: c.oBias, loraAlpha: al)
        self.rotary = rotary
        if moe, let a = c.attentionMoE {
            experts = AttentionGate(store, prefix: prefix + ".gate", experts: kvHeads, dim: dim, topK: a.topK, scale: a.scale)
        } else {
            experts = nil
        }
    }

    public var anyTrainable: Bool {
        q.anyTrainable || k.anyTrainable || v.anyTrainable || o.anyTrainable || (experts?.gate.weight.trainable ?? false)
    }

    /// What o_proj reads: the gated outputs under the attention MoE, else y.
    private var oInput: FloatBuffer { experts == nil ? y : yg }

    /// Attention MoE: `yg = y * w[token, expert of the head]` over `n` rows.
    private func gateOutputs(n: Int) {
        guard let ex = experts else { return }
        let qd = heads * headDim, hd = headDim, group = heads / kvHeads, E = kvHeads
        let yb = y.ptr, gb = yg.ptr, w = ex.weights.ptr
        for i in 0..<n {
            for h in 0..<heads {
                let wt = w[i * E + h / group], src = yb + i * qd + h * hd, dst = gb + i * qd + h * hd
                for c in 0..<hd { dst[c] = wt * src[c] }
            }
        }
    }

    /// Softmax of one (sequence, head) score block: causal, and under the attention MoE restricted
    /// to the tokens routed to the head's expert (rows `t0..<t0+T` of the gate).
    private func softmaxRows(_ P: UnsafeMutablePointer<Float>, T: Int, t0: Int, group g: Int) {
        if let ex = experts {
            maskedCausalSoftmaxRowsSerial(P, T: T, keep: ex.keep.ptr + t0 * kvHeads + g, stride: kvHeads)
        } else {
            causalSoftmaxRowsSerial(P, T: T)
        }
    }

    /// Grows each buffer that is too small for `b x T` (each checked on its own: a batch with
    /// fewer tokens can still need a larger `[T, T]` scratch).
    public func reserve(batch b: Int, seq T: Int) {
        let n = b * T, qd = heads * headDim, kd = kvHeads * headDim
        func grow(_ buf: inout FloatBuffer, _ need: Int) { if buf.count < need { buf = FloatBuffer(count: need) } }
        grow(&qBuf, n * qd); grow(&kBuf, n * kd); grow(&vBuf, n * kd)
        grow(&att, b * heads * T * T); grow(&y, n * qd); grow(&out, n * dim)
        grow(&dq, n * qd); grow(&dk, n * kd); grow(&dv, n * kd); grow(&dy, n * qd)
        if let ex = experts {
            grow(&yg, n * qd); grow(&dWeights, n * kvHeads)
            ex.reserve(n)
        }
    }

    /// Grows the row buffers for `n` tokens only (a packed prefill: no `[T, T]` scores of a
    /// whole batch, and no backward buffers).
    func reserveRows(_ n: Int) {
        let qd = heads * headDim, kd = kvHeads * headDim
        func grow(_ buf: inout FloatBuffer, _ need: Int) { if buf.count < need { buf = FloatBuffer(count: need) } }
        grow(&qBuf, n * qd); grow(&kBuf, n * kd); grow(&vBuf, n * kd); grow(&y, n * qd); grow(&out, n * dim)
        if let ex = experts {
            grow(&yg, n * qd)
            ex.reserve(n)
        }
    }

    /// Prefill of prompts packed without padding: prompt `s` is rows `sequences[s]` of `inp`
    /// (`[n, d]`, positions restarting at 0 per prompt); its keys and values go to positions
    /// `0..<len` of cache row `slots[s]`. Attention stays within each prompt (causal), so a
    /// prompt's rows equal its own forward pass whatever else is packed with it.
    public func prefill(
        _ inp: UnsafePointer<Float>, positions: UnsafePointer<Int32>, sequences: [Range<Int>], cache: LayerCache, slots: [Int]
    ) {
        let n = sequences.last?.upperBound ?? 0, hd = headDim, qd = heads * hd, kd = kvHeads * hd, group = heads / kvHeads
        projectQKV(inp, positions: positions, n: n)
        experts?.route(inp, n: n)
        for (s, r) in sequences.enumerated() {
            (cache.k.ptr + slots[s] * cache.maxLen * kd).update(from: kBuf.ptr + r.lowerBound * kd, count: r.count * kd)
            (cache.v.ptr + slots[s] * cache.maxLen * kd).update(from: vBuf.ptr + r.lowerBound * kd, count: r.count * kd)
            if let ex = experts, let keep = cache.keep {
                (keep.ptr + slots[s] * cache.maxLen * kvHeads).update(from: ex.keep.ptr + r.lowerBound * kvHeads, count: r.count * kvHeads)
            }
        }
        let maxT = sequences.map(\.count).max() ?? 0, tasks = sequences.count * kvHeads
        let taskSlots = Parallel.taskSlots(tasks)
        if dAtt.count < taskSlots * maxT * maxT { dAtt = FloatBuffer(count: taskSlots * maxT * maxT) }  // per-task [T, T] scores
        let scale = 1 / Float(hd).squareRoot()
        let qb = qBuf.ptr, kb = kBuf.ptr, vb = vBuf.ptr, yb = y.ptr, scores = dAtt.ptr
        Profile.measure("attention core") {
            // one task per (prompt, KV group): single-threaded GEMMs inside, tasks in parallel
            Parallel.forEachTask(tasks) { task, slot in
                let r = sequences[task / kvHeads], g = task % kvHeads, T = r.count, t0 = r.lowerBound
                let P = scores + slot * maxT * maxT
                for h in (g * group)..<((g + 1) * group) {
                    // S = Q K^T * scale, causal softmax, Y = P V (as `forward`, over this prompt's rows)
                    sgemm(
                        transA: false, transB: true, M: T, N: T, K: hd, alpha: scale, A: qb + t0 * qd + h * hd, lda: qd,
                        B: kb + t0 * kd + g * hd, ldb: kd, C: P, ldc: T)
                    self.softmaxRows(P, T: T, t0: t0, group: g)
                    sgemm(
                        transA: false, transB: false, M: T, N: hd, K: T, A: P, lda: T, B: vb + t0 * kd + g * hd, ldb: kd,
                        C: yb + t0 * qd + h * hd, ldc: qd)
                }
            }
        }
        gateOutputs(n: n)
        o.forward(oInput.ptr, out.ptr, n: n)
    }

    /// `q = rope(x Wq^T)`, `k = rope(x Wk^T)`, `v = x Wv^T` for `n` rows into qBuf, kBuf, vBuf
    /// (the shared start of the training forward and of one decoding step).
    func projectQKV(_ inp: UnsafePointer<Float>, positions: UnsafePointer<Int32>, n: Int) {
        q.forward(inp, qBuf.ptr, n: n)
        k.forward(inp, kBuf.ptr, n: n)
        v.forward(inp, vBuf.ptr, n: n)
        Profile.measure("rotary") {
            rotary.forward(qBuf.ptr, positions: positions, n: n, heads: heads)
            rotary.forward(kBuf.ptr, positions: positions, n: n, heads: kvHeads)
        }
    }

    public func forward(
        _ inp: UnsafePointer<Float>, positions: UnsafePointer<Int32>, batch b: Int, seq T: Int,
        cache: LayerCache? = nil
    ) {
        let n = b * T, hd = headDim, qd = heads * hd, kd = kvHeads * hd, group = heads / kvHeads
        projectQKV(inp, positions: positions, n: n)
        experts?.route(inp, n: n)
        if let cache {  // prefill: keep every position's k, v (rows past a prompt's end are overwritten later)
            for s in 0..<b {
                (cache.k.ptr + s * cache.maxLen * kd).update(from: kBuf.ptr + s * T * kd, count: T * kd)
                (cache.v.ptr + s * cache.maxLen * kd).update(from: vBuf.ptr + s * T * kd, count: T * kd)
                if let ex = experts, let keep = cache.keep {
                    (keep.ptr + s * cache.maxLen * kvHeads).update(from: ex.keep.ptr + s * T * kvHeads, count: T * kvHeads)
                }
            }
        }
        let scale = 1 / Float(hd).squareRoot()
        let qb = qBuf.ptr, kb = kBuf.ptr, vb = vBuf.ptr, ab = att.ptr, yb = y.ptr, heads = heads
        Profile.measure("attention core") {
            // one task per (sequence, KV group): single-threaded GEMMs inside, tasks in parallel
            Parallel.forEachTask(b * kvHeads) { task in
                let s = task / kvHeads, g = task % kvHeads
                for h in (g * group)..<((g + 1) * group) {
                    let qh = qb + s * T * qd + h * hd
                    let kh = kb + s * T * kd + g * hd, vh = vb + s * T * kd + g * hd
                    let P = ab + (s * heads + h) * T * T
                    // S = Q K^T * scale
                    sgemm(transA: false, transB: true, M: T, N: T, K: hd, alpha: scale, A: qh, lda: qd, B: kh, ldb: kd, C: P, ldc: T)
                    self.softmaxRows(P, T: T, t0: s * T, group: g)
                    // Y = P V
                    sgemm(
                        transA: false, transB: false, M: T, N: hd, K: T, A: P, lda: T, B: vh, ldb: kd,
                        C: yb + s * T * qd + h * hd, ldc: qd)
                }
            }
        }
        gateOutputs(n: n)
        o.forward(oInput.ptr, out.ptr, n: n)
    }

    /// Backward of the whole block; `dinp` (if given) is accumulated into.
    public func backward(
        _ dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, dinp: UnsafeMutablePointer<Float>?,
        positions: UnsafePointer<Int32>, batch b: Int, seq T: Int
    ) {
        let n = b * T, hd = headDim, qd = heads * hd, kd = kvHeads * hd, group = heads / kvHeads
        let needQKV = dinp != nil || q.anyTrainable || k.anyTrainable || v.anyTrainable
        let gateTrainable = experts?.gate.weight.trainable ?? false
        // out = Y Wo^T (under the attention MoE, out = Yg Wo^T)
        o.backward(dout, inp: oInput.ptr, dinp: needQKV || gateTrainable ? dy.ptr : nil, accumulate: false, n: n)
        if let ex = experts, needQKV || gateTrainable {
            // yg = y * w[token, expert]  ->  dw[token, expert] = sum over its heads of dyg . y, dy = w * dyg
            let E = kvHeads, group = heads / kvHeads, w = ex.weights.ptr, dw = dWeights.ptr, yb = y.ptr, dyb = dy.ptr
            for i in 0..<n {
                for e in 0..<E { dw[i * E + e] = 0 }
                for h in 0..<heads {
                    let g = h / group, yr = yb + i * qd + h * hd, dr = dyb + i * qd + h * hd
                    var dot: Float = 0
                    for c in 0..<hd { dot += dr[c] * yr[c] }
                    dw[i * E + g] += dot
                    for c in 0..<hd { dr[c] *= w[i * E + g] }
                }
            }
            ex.backward(dw, inp: inp, dinp: dinp, n: n)
        }
        guard needQKV else { return }
        Profile.measure("zero") {
            dk.zero(); dv.zero()
        }
        let scale = 1 / Float(hd).squareRoot()
        let tasks = b * kvHeads, slots = Parallel.taskSlots(tasks)
        if dAtt.count < slots * T * T { dAtt = FloatBuffer(count: slots * T * T) }
        let qb = qBuf.ptr, kb = kBuf.ptr, vb = vBuf.ptr, ab = att.ptr, dyb = dy.ptr, dqb = dq.ptr, dkb = dk.ptr, dvb = dv.ptr
        let dAttb = dAtt.ptr, heads = heads
        Profile.measure("attention core") {
            // tasks per (sequence, KV group): dK and dV of a group are only written by its own task
            Parallel.forEachTask(tasks) { task, slot in
                let s = task / kvHeads, g = task % kvHeads, dP = dAttb + slot * T * T
                let kOff = s * T * kd + g * hd
                for h in (g * group)..<((g + 1) * group) {
                    let qh = qb + s * T * qd + h * hd, dqh = dqb + s * T * qd + h * hd
                    let P = ab + (s * heads + h) * T * T
                    let dyh = dyb + s * T * qd + h * hd
                    // Y = P V  ->  dP = dY V^T, dV += P^T dY
                    sgemm(transA: false, transB: true, M: T, N: T, K: hd, A: dyh, lda: qd, B: vb + kOff, ldb: kd, C: dP, ldc: T)
                    sgemm(transA: true, transB: false, M: T, N: hd, K: T, A: P, lda: T, B: dyh, ldb: qd, beta: 1, C: dvb + kOff, ldc: kd)
                    // P = softmax(S)  ->  dS = P * (dP - rowsum(P * dP))
                    softmaxBackwardRowsSerial(P, dP, T: T)
                    // S = Q K^T * scale  ->  dQ = dS K * scale, dK += dS^T Q * scale
                    sgemm(
                        transA: false, transB: false, M: T, N: hd, K: T, alpha: scale, A: dP, lda: T, B: kb + kOff, ldb: kd,
                        C: dqh, ldc: qd)
                    sgemm(
                        transA: true, transB: false, M: T, N: hd, K: T, alpha: scale, A: dP, lda: T, B: qh, ldb: qd, beta: 1,
                        C: dkb + kOff, ldc: kd)
                }
            }
        }
        // q = rope(x Wq^T): undo the rotation, then the projections
        rotary.backward(dq.ptr, positions: positions, n: n, heads: heads)
        rotary.backward(dk.ptr, positions: positions, n: n, heads: kvHeads)
        q.backward(dq.ptr, inp: inp, dinp: dinp, accumulate: true, n: n)
        k.backward(dk.ptr, inp: inp, dinp: dinp, accumulate: true, n: n)
        v.backward(dv.ptr, inp: inp, dinp: dinp, accumulate: true, n: n)
    }
}

extension Attention {
    /// One new token per sequence against the cache: `inp` `[b, d]`, token `s` at position
    /// `positions[s]` of cache row `slots[s]` (continuous batching: the rows of a step are any
    /// subset of the cache's sequences); attends to that row's positions `0...positions[s]`.
    public func decode(
        _ inp: UnsafePointer<Float>, positions: UnsafePointer<Int32>, slots: UnsafePointer<Int32>, batch b: Int, cache: LayerCache
    ) {
        let kd = kvHeads * headDim, L = cache.maxLen, E = kvHeads
        projectQKV(inp, positions: positions, n: b)
        experts?.route(inp, n: b)
        for s in 0..<b {
            let p = Int(positions[s]), row = Int(slots[s])
            precondition(p < L && row < cache.batch, "KV cache full")  // checked by DecoderModel.decodeStep
            (cache.k.ptr + (row * L + p) * kd).update(from: kBuf.ptr + s * kd, count: kd)
            (cache.v.ptr + (row * L + p) * kd).update(from: vBuf.ptr + s * kd, count: kd)
            if let ex = experts, let keep = cache.keep { (keep.ptr + (row * L + p) * E).update(from: ex.keep.ptr + s * E, count: E) }
        }
        let qb = qBuf.ptr, yb = y.ptr, K = cache.k.ptr, V = cache.v.ptr, keep = experts == nil ? nil : cache.keep.map { UnsafePointer($0.ptr) }
        Profile.measure("attention decode") { decodeCore(qb, yb, K, V, keep, positions: positions, slots: slots, batch: b, L: L) }
        gateOutputs(n: b)
        o.forward(oInput.ptr, out.ptr, n: b)
    }

    /// `y = softmax(q K^T * scale) V` of each row against its own cache row (the part of `decode`
    /// after the projections). Under the attention MoE (`keep`: the cache's `[batch, L, E]`
    /// selections, this step's included) a head whose expert the token did not select outputs 0
    /// and the others attend only to the positions routed to their expert.
    private func decodeCore(
        _ qb: UnsafePointer<Float>, _ yb: UnsafeMutablePointer<Float>, _ K: UnsafePointer<Float>, _ V: UnsafePointer<Float>,
        _ keep: UnsafePointer<Float>?, positions: UnsafePointer<Int32>, slots: UnsafePointer<Int32>, batch b: Int, L: Int
    ) {
        let hd = headDim, qd = heads * hd, kd = kvHeads * hd, group = heads / kvHeads, heads = heads, E = kvHeads
        let scale = 1 / Float(hd).squareRoot()
        Parallel.forChunks(b * heads, grain: 4) { r in
            let scores = UnsafeMutablePointer<Float>.allocate(capacity: L)
            defer { scores.deallocate() }
            for sh in r {
                let s = sh / heads, h = sh % heads, len = Int(positions[s]) + 1, row = Int(slots[s])
                let qv = qb + s * qd + h * hd, out = yb + s * qd + h * hd
                let kBase = K + row * L * kd + (h / group) * hd, vBase = V + row * L * kd + (h / group) * hd
                out.update(repeating: 0, count: hd)
                if let keep {
                    // attention MoE: only the positions routed to this head's expert (the step's own included when selected)
                    let kr = keep + row * L * E + h / group
                    guard kr[(len - 1) * E] != 0 else { continue }
                    var m = -Float.infinity
                    for j in 0..<len where kr[j * E] != 0 {
                        let kj = kBase + j * kd
                        var dot: Float = 0
                        for c in 0..<hd { dot += qv[c] * kj[c] }
                        scores[j] = dot * scale
                        m = max(m, scores[j])
                    }
                    var sum: Float = 0
                    for j in 0..<len where kr[j * E] != 0 {
                        scores[j] = expf(scores[j] - m)
                        sum += scores[j]
                    }
                    for j in 0..<len where kr[j * E] != 0 {
                        let w = scores[j] / sum, vj = vBase + j * kd
                        for c in 0..<hd { out[c] += w * vj[c] }
                    }
                    continue
                }
                var m = -Float.infinity
                // four positions at a time: four independent sums, each in the same order as one
                // at a time (so the same bits), instead of one chain of dependent additions
                var j = 0
                while j + 4 <= len {
                    let k0 = kBase + j * kd, k1 = k0 + kd, k2 = k1 + kd, k3 = k2 + kd
                    var d0: Float = 0, d1: Float = 0, d2: Float = 0, d3: Float = 0
                    for c in 0..<hd {
                        let q = qv[c]
                        d0 += q * k0[c]
                        d1 += q * k1[c]
                        d2 += q * k2[c]
                        d3 += q * k3[c]
                    }
                    scores[j] = d0 * scale
                    scores[j + 1] = d1 * scale
                    scores[j + 2] = d2 * scale
                    scores[j + 3] = d3 * scale
                    m = max(m, scores[j], scores[j + 1], scores[j + 2], scores[j + 3])
                    j += 4
                }
                while j < len {
                    let kj = kBase + j * kd
                    var dot: Float = 0
                    for c in 0..<hd { dot += qv[c] * kj[c] }
                    scores[j] = dot * scale
                    m = max(m, scores[j])
                    j += 1
                }
                let sum = VectorMath.expSum(scores, len, shift: m, out: scores)
                for j in 0..<len {
                    let w = scores[j] / sum, vj = vBase + j * kd
                    for c in 0..<hd { out[c] += w * vj[c] }
                }
            }
        }
    }
}
