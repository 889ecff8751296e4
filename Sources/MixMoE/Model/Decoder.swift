import Foundation

/// One transformer block: `x += attn(rmsnorm(x))`, `x += ffn(rmsnorm(x))`.
public final class Block: @unchecked Sendable {
    public let ln1: RMSNorm, attn: Attention, ln2: RMSNorm
    public var ffn: FeedForward
    var mid = FloatBuffer(count: 0)  // [N, d] residual stream after attention

    init(ln1: RMSNorm, attn: Attention, ln2: RMSNorm, ffn: FeedForward) {
        self.ln1 = ln1; self.attn = attn; self.ln2 = ln2; self.ffn = ffn
    }

    var attnTrainable: Bool { ln1.weight.trainable || attn.anyTrainable }
    var ffnTrainable: Bool { ln2.weight.trainable || ffn.anyTrainable }
}

/// A Llama-family decoder (docs/DESIGN.md, *The dense model*) over one contiguous `ParameterStore`.
///
/// Activations are preallocated for the largest `(batch, seq)` seen; `forward` fills `logits`,
/// `backward` accumulates into the store's gradients for trainable views only and stops below the
/// lowest trainable part.
public final class DecoderModel: @unchecked Sendable {
    public let config: ModelConfig
    public let store: ParameterStore
    public let embed: Param  // [V, d]
    public let lmHead: Param  // [V, d]; the embedding itself when tied
    public let blocks: [Block]
    public let norm: RMSNorm
    let rotary: Rotary
    /// Shared MoE state (padding mask, load-balance weight, statistics switch).
    public let moe = MoEContext()
    /// The Mix-MoE layers, in layer order (empty for a dense model).
    public let moeLayers: [MixMoELayer]
    public private(set) var realMask = FloatBuffer(count: 0)  // [N] 1 = real token, 0 = padding

    public private(set) var ids = IntBuffer(count: 0)  // [N]
    public private(set) var targets = IntBuffer(count: 0)  // [N], negative = ignored
    public private(set) var positions = IntBuffer(count: 0)  // [N]
    private var slotRows = IntBuffer(count: 0)  // [b] cache row of each decoding row
    private var res: [FloatBuffer] = []  // L+1 x [N, d]
    public private(set) var logits = FloatBuffer(count: 0)  // [N, V]; its gradient after backward
    private var losses = FloatBuffer(count: 0)  // [N]
    private var dres = FloatBuffer(count: 0)  // [N, d] running residual gradient
    private var dln = FloatBuffer(count: 0)  // [N, d] gradient of a norm's output
    public private(set) var capacity = 0  // tokens the buffers hold

    /// Parameter names and shapes of the dense model, in Hugging Face's order.
    public static func denseLayout(_ c: ModelConfig) -> [(String, [Int])] {
        let d = c.hiddenSize, qd = c.numAttentionHeads * c.headDim, kd = c.numKeyValueHeads * c.headDim
        var l: [(String, [Int])] = [("model.embed_tokens.weight", [c.vocabSize, d])]
        for i in 0..<c.numHiddenLayers {
            let p = "model.layers.\(i)."
            l.append((p + "input_layernorm.weight", [d]))
            l.append((p + "self_attn.q_proj.weight", [qd, d]))
            if c.qkvBias { l.append((p + "self_attn.q_proj.bias", [qd])) }
            l.append((p + "self_attn.k_proj.weight", [kd, d]))
            if c.qkvBias { l.append((p + "self_attn.k_proj.bias", [kd])) }
            l.append((p + "self_attn.v_proj.weight", [kd, d]))
            if c.qkvBias { l.append((p + "self_attn.v_proj.bias", [kd])) }
            l.append((p + "self_attn.o_proj.weight", [d, qd]))
            if c.oBias { l.append((p + "self_attn.o_proj.bias", [d])) }
            if c.attentionMoE?.layers.contains(i) == true { l.append((p + "self_attn.gate.weight", [c.numKeyValueHeads, d])) }
            l.append((p + "post_attention_layernorm.weight", [d]))
            l.append(contentsOf: denseFFNLayout(c, layer: i))
        }
        l.append(("model.norm.weight", [d]))
        if !c.tieWordEmbeddings { l.append(("lm_head.weight", [c.vocabSize, d])) }
        return l
    }

    /// Names and shapes of the model `c` describes: dense, or Mix-MoE when `c.mixMoE` is set.
    static func layout(_ c: ModelConfig) -> [(String, [Int])] {
        guard let m = c.mixMoE else { return denseLayout(c) }
        var l: [(String, [Int])] = []
        for (name, shape) in denseLayout(c) {
            if let i = m.moeLayers.first(where: { name.hasPrefix("model.layers.\($0).mlp.") }) {
                if name.hasSuffix("down_proj.weight") {  // the dense FFN's last tensor: put the groups here
                    for g in m.groupNames {
                        l += ExpertGroup.layout(
                            prefix: "model.layers.\(i).mlp", group: g, cfg: m,
                            d: c.hiddenSize, intermediate: c.intermediateSize)
                    }
                }
                continue
            }
            l.append((name, shape))
        }
        if m.routerFeatures == .random { l.append(("model.router_transform", [c.hiddenSize, c.hiddenSize])) }
        return l
    }

    /// The full layout: dense or Mix-MoE, plus LoRA adapters when configured.
    public static func fullLayout(_ c: ModelConfig) -> [(String, [Int])] {
        var l = layout(c)
        guard let lo = c.lora else { return l }
        var extra: [(String, [Int])] = []
        for (name, shape) in l where name.hasSuffix(".weight") && shape.count == 2 {
            let prefix = String(name.dropLast(".weight".count))
            guard let mod = prefix.split(separator: ".").last, lo.targets.contains(String(mod)), prefix.hasPrefix("model.layers.") else { continue }
            extra += LoRAAdapter.layout(prefix, inF: shape[1], outF: shape[0], r: lo.r)
        }
        l += extra
        return l
    }

    public static func denseFFNLayout(_ c: ModelConfig, layer i: Int) -> [(String, [Int])] {
        let p = "model.layers.\(i).mlp.", d = c.hiddenSize, f = c.intermediateSize
        return [(p + "gate_proj.weight", [f, d]), (p + "up_proj.weight", [f, d]), (p + "down_proj.weight", [d, f])]
    }

    /// Builds a model over `store` (finalized, holding every name of `layout`). `makeFFN` may
    /// return a replacement for a layer's dense FFN (Mix-MoE); nil keeps SwiGLU.
    public init(
        config c: ModelConfig, store: ParameterStore,
        makeFFN: (Int, ParameterStore) -> FeedForward? = { _, _ in nil }
    ) {
        config = c
        self.store = store
        embed = Param(store, "model.embed_tokens.weight")
        lmHead = c.tieWordEmbeddings ? embed : Param(store, "lm_head.weight")
        let rotary = Rotary(config: c)
        self.rotary = rotary
        var moeByLayer: [Int: MixMoELayer] = [:]
        if let m = c.mixMoE {
            var T: UnsafePointer<Float>? = nil
            var owner: AnyObject? = nil
            if let mat = RouterTransform.matrix(m.routerFeatures, d: c.hiddenSize) {
                let buf = FloatBuffer(mat)
                T = UnsafePointer(buf.ptr); owner = buf
            } else if m.routerFeatures == .random, let id = store.id("model.router_transform") {
                T = UnsafePointer(store.w(id)); owner = store
            }
            for i in m.moeLayers {
                moeByLayer[i] = MixMoELayer(
                    store, layer: i, cfg: m, d: c.hiddenSize, intermediate: c.intermediateSize,
                    transform: T, transformOwner: owner, context: moe)
            }
        }
        moeLayers = moeByLayer.keys.sorted().map { moeByLayer[$0]! }
        blocks = (0..<c.numHiddenLayers).map { i in
            let p = "model.layers.\(i)."
            return Block(
                ln1: RMSNorm(store, p + "input_layernorm.weight", dim: c.hiddenSize, eps: c.rmsNormEps),
                attn: Attention(store, prefix: p + "self_attn", config: c, rotary: rotary, experts: c.attentionMoE?.layers.contains(i) == true),
                ln2: RMSNorm(store, p + "post_attention_layernorm.weight", dim: c.hiddenSize, eps: c.rmsNormEps),
                ffn: moeByLayer[i] ?? makeFFN(i, store)
                    ?? SwiGLU(
                        store, prefix: p + "mlp", dim: c.hiddenSize, hidden: c.intermediateSize,
                        loraAlpha: c.lora?.alpha ?? 16))
        }
        norm = RMSNorm(store, "model.norm.weight", dim: c.hiddenSize, eps: c.rmsNormEps)
    }

    /// A dense model with freshly initialised weights: N(0, 0.02) for matrices and embeddings
    /// (transformers' `initializer_range`), ones for norms, zeros for biases.
    public convenience init(config c: ModelConfig, seed: UInt64) {
        let store = ParameterStore(layout: DecoderModel.fullLayout(c))
        var rng = SplitMix64(seed: seed)
        for e in store.entries {
            let w = store.w(store.id(e.name)!)
            if e.name.hasSuffix("norm.weight") {
                w.update(repeating: 1, count: e.count)
            } else if e.name.hasSuffix(".bias") || e.name.hasSuffix(".lora_B.weight") {
                w.update(repeating: 0, count: e.count)
            } else {
                for i in 0..<e.count { w[i] = 0.02 * rng.nextGaussian() }
            }
        }
        Upcycling.initializeRouters(store, c)
        self.init(config: c, store: store)
    }

    /// Allocates activations for `batch x seq` tokens (no-op when they fit).
    public func reserve(batch b: Int, seq T: Int) {
        let n = b * T
        rotary.reserve(positions: max(T, 1))
        for blk in blocks { blk.attn.reserve(batch: b, seq: T) }
        reserveTokens(n)
    }

    /// Grows the per-token buffers (ids, residual stream, norms, FFN, logits) to `n` tokens.
    private func reserveTokens(_ n: Int) {
        let d = config.hiddenSize
        guard n > capacity else { return }
        capacity = n
        ids = IntBuffer(count: n); targets = IntBuffer(count: n); positions = IntBuffer(count: n)
        realMask = FloatBuffer(count: n)
        moe.realMask = UnsafePointer(realMask.ptr)
        res = (0...config.numHiddenLayers).map { _ in FloatBuffer(count: n * d) }
        logits = FloatBuffer(count: n * config.vocabSize); losses = FloatBuffer(count: n)
        dres = FloatBuffer(count: n * d); dln = FloatBuffer(count: n * d)
        for blk in blocks {
            blk.ln1.reserve(tokens: n); blk.ln2.reserve(tokens: n); blk.ffn.reserve(tokens: n)
            blk.mid = FloatBuffer(count: n * d)
        }
        norm.reserve(tokens: n)
    }

    /// Copies a `[b, T]` batch of token ids (and optional targets) into the model's input buffers;
    /// positions restart at 0 for every sequence. Ids come from users' input: one outside the
    /// vocabulary throws (in release builds too) instead of reading past the embedding table.
    public func setBatch(ids src: [Int32], targets tgt: [Int32]? = nil, mask: [Float]? = nil, batch b: Int, seq T: Int) throws {
        precondition(src.count == b * T, "ids must hold batch*seq tokens")
        if let i = src.firstIndex(where: { $0 < 0 || Int($0) >= config.vocabSize }) {
            throw ModelError.tokenOutOfRange(id: src[i], position: i, vocabSize: config.vocabSize)
        }
        reserve(batch: b, seq: T)
        for i in 0..<(b * T) {
            let id = src[i]
            ids.ptr[i] = id
            targets.ptr[i] = tgt?[i] ?? -1
            realMask.ptr[i] = mask?[i] ?? 1
            positions.ptr[i] = Int32(i % T)
        }
    }

    /// Forward pass over the current batch; fills `logits` `[b*T, V]`.
    public func forward(batch b: Int, seq T: Int) {
        forwardPass(batch: b, seq: T, cache: nil)
    }

    /// Prefill: the forward pass, keeping every layer's keys and values in `cache` for generation.
    /// With `logitRows` (increasing row indices of the `b * T` tokens, e.g. each prompt's last
    /// position) only those rows' logits are computed, into rows `0..<logitRows.count`: generation
    /// needs one row per prompt, and the LM head over every position would cost `T` times more
    /// (at a 128k vocabulary, more than the rest of a short prompt's prefill). Throws when the
    /// cache holds fewer than `T` positions or `b` sequences. (Generation prefills with
    /// `prefill(_:slots:cache:)`, which packs prompts without padding.)
    public func forward(batch b: Int, seq T: Int, cache: [LayerCache], logitRows: [Int]? = nil) throws {
        guard let c = cache.first, T <= c.maxLen, b <= c.batch else {
            throw ModelError.contextOverflow(
                what: "a prompt of \(b) x \(T) tokens (prefill)", tokens: T,
                limit: cache.first.map { $0.maxLen } ?? 0)
        }
        precondition(
            logitRows.map { r in zip(r, r.dropFirst()).allSatisfy { $0 < $1 } && r.allSatisfy { $0 >= 0 && $0 < b * T } } ?? true,
            "logitRows must increase within the batch")
        forwardPass(batch: b, seq: T, cache: cache, logitRows: logitRows)
    }

    /// Prefill of `prompts` packed into one batch without padding (continuous batching admits
    /// prompts of any lengths together): prompt `s`'s keys and values go to cache row `slots[s]`,
    /// and logits rows `0..<prompts.count` are each prompt's last position. Each prompt's rows
    /// equal its own forward pass. Throws when a prompt is longer than the cache or holds a token
    /// outside the vocabulary.
    public func prefill(_ prompts: [[Int32]], slots: [Int], cache: [LayerCache]) throws {
        precondition(slots.count == prompts.count && Set(slots).count == slots.count, "one distinct slot per prompt")
        let longest = prompts.map(\.count).max() ?? 0
        guard let c = cache.first, longest <= c.maxLen, (slots.max() ?? 0) < c.batch else {
            throw ModelError.contextOverflow(
                what: "a prompt of \(longest) tokens (prefill)", tokens: longest, limit: cache.first.map { $0.maxLen } ?? 0)
        }
        var sequences: [Range<Int>] = [], n = 0
        for p in prompts {
            precondition(!p.isEmpty, "empty prompt")
            if let i = p.firstIndex(where: { $0 < 0 || Int($0) >= config.vocabSize }) {
                throw ModelError.tokenOutOfRange(id: p[i], position: i, vocabSize: config.vocabSize)
            }
            sequences.append(n..<(n + p.count)); n += p.count
        }
        rotary.reserve(positions: longest)
        for blk in blocks { blk.attn.reserveRows(n) }
        reserveTokens(n)
        for (p, r) in zip(prompts, sequences) {
            for (i, t) in p.enumerated() {
                ids.ptr[r.lowerBound + i] = t; positions.ptr[r.lowerBound + i] = Int32(i)
                targets.ptr[r.lowerBound + i] = -1; realMask.ptr[r.lowerBound + i] = 1
            }
        }
        trunk(n: n, logitRows: sequences.map { $0.upperBound - 1 }) { l, blk in
            blk.attn.prefill(blk.ln1.out.ptr, positions: positions.ptr, sequences: sequences, cache: cache[l], slots: slots)
        }
    }

    private func forwardPass(batch b: Int, seq T: Int, cache: [LayerCache]?, logitRows: [Int]? = nil) {
        trunk(n: b * T, logitRows: logitRows) { l, blk in
            blk.attn.forward(blk.ln1.out.ptr, positions: positions.ptr, batch: b, seq: T, cache: cache?[l])
        }
    }

    /// Embedding, every block and the LM head over the first `n` rows of `ids`; `attention(l, block)`
    /// runs block l's attention on `ln1(x)` (a training / prefill pass, or one decoding step). The
    /// LM head covers every row, or only `logitRows` (moved to the front of `norm.out` first; row
    /// i's source is at or after i since the rows increase, so the moves never overwrite a source).
    private func trunk(n: Int, logitRows: [Int]? = nil, attention: (Int, Block) -> Void) {
        let d = config.hiddenSize, V = config.vocabSize
        Profile.measure("embedding") { Embedding.forward(embed.operand, ids: ids.ptr, out: res[0].ptr, n: n, dim: d) }
        for (l, blk) in blocks.enumerated() {
            let x = res[l].ptr, mid = blk.mid.ptr, out = res[l + 1].ptr
            Profile.measure("norm") { blk.ln1.forward(x, n: n) }
            attention(l, blk)
            Profile.measure("residual") { add(x, blk.attn.out.ptr, into: mid, count: n * d) }  // mid = x + attn(ln1(x))
            Profile.measure("norm") { blk.ln2.forward(mid, n: n) }
            blk.ffn.forward(blk.ln2.out.ptr, n: n)
            Profile.measure("residual") { add(mid, blk.ffn.output, into: out, count: n * d) }  // out = mid + ffn(ln2(mid))
        }
        Profile.measure("norm") { norm.forward(res[blocks.count].ptr, n: n) }
        var rows = n
        if let logitRows {
            for (i, r) in logitRows.enumerated() where r != i { (norm.out.ptr + i * d).update(from: norm.out.ptr + r * d, count: d) }
            rows = logitRows.count
        }
        // logits = norm(x) E^T
        Profile.measure("lm head") {
            gemm(transB: true, M: rows, N: V, K: d, A: norm.out.ptr, lda: d, B: lmHead.operand, ldb: d, C: logits.ptr, ldc: V)
        }
    }

    /// One generation step: token `ids[s]` of sequence `s` at position `positions[s]` of cache row
    /// `slots[s]` (default `s`); fills the first `b` rows of `logits`. The rows may be any subset
    /// of the cache's sequences, in any order (continuous batching, beams). Throws when a position
    /// or a row is past the cache's capacity.
    public func decodeStep(ids tok: [Int32], positions pos: [Int32], slots: [Int32]? = nil, cache: [LayerCache]) throws {
        let b = tok.count, V = config.vocabSize
        precondition(pos.count == b && (slots?.count ?? b) == b, "one position and slot per token")
        if let c = cache.first, let p = pos.max(), Int(p) >= c.maxLen || Int(slots?.max() ?? Int32(b - 1)) >= c.batch {
            throw ModelError.contextOverflow(what: "decoding position \(p)", tokens: Int(p) + 1, limit: c.maxLen)
        }
        if let i = tok.firstIndex(where: { $0 < 0 || Int($0) >= V }) {
            throw ModelError.tokenOutOfRange(id: tok[i], position: i, vocabSize: V)
        }
        reserve(batch: b, seq: 1)
        if slotRows.count < b { slotRows = IntBuffer(count: b) }
        for s in 0..<b {
            ids.ptr[s] = tok[s]; positions.ptr[s] = pos[s]; realMask.ptr[s] = 1
            slotRows.ptr[s] = slots?[s] ?? Int32(s)
        }
        rotary.reserve(positions: Int(pos.max()!) + 1)
        trunk(n: b) { l, blk in
            blk.attn.decode(blk.ln1.out.ptr, positions: positions.ptr, slots: slotRows.ptr, batch: b, cache: cache[l])
        }
    }

    /// Empty caches for `batch` sequences of up to `maxLen` positions.
    public func makeCache(batch: Int, maxLen: Int) -> [LayerCache] {
        rotary.reserve(positions: maxLen)
        return blocks.map { blk in
            LayerCache(
                batch: batch, maxLen: maxLen, kd: config.numKeyValueHeads * config.headDim, experts: blk.attn.experts == nil ? 0 : config.numKeyValueHeads)
        }
    }

    /// Cross-entropy of the current logits against `targets`: (sum over valid tokens, count).
    public func loss(batch b: Int, seq T: Int) -> (sum: Double, count: Int) {
        Profile.measure("cross entropy") {
            CrossEntropy.forward(logits.ptr, targets: targets.ptr, losses: losses.ptr, n: b * T, vocab: config.vocabSize)
        }
    }

    /// The MoE auxiliary terms of the last forward: `lbCoef * mean over MoE layers of (L_LB^LM [+ L_LB^MT])`,
    /// plus `lprCoef *` the mean LPR loss when the batch carries an LPR mask (MoE-LPR).
    public var auxLoss: Double {
        guard let m = config.mixMoE, !moeLayers.isEmpty else { return 0 }
        let L = Double(moeLayers.count)
        let lpr = moe.lprMask == nil ? 0 : m.lprCoef * moeLayers.reduce(0) { $0 + $1.lprLoss } / L
        return m.lbCoef * moeLayers.reduce(0) { $0 + $1.lbLoss } / L + lpr
    }

    private var lprBuffer = FloatBuffer(count: 0)  // [N] 1 = token of an original language (MoE-LPR)

    /// MoE-LPR: marks the current batch's tokens of the original language(s), which the
    /// language-prior routing loss pushes to expert 0 (nil: no such loss).
    public func setLPRMask(_ m: [Float]?) {
        guard let m else { moe.lprMask = nil; return }
        if lprBuffer.count < m.count { lprBuffer = FloatBuffer(count: m.count) }
        lprBuffer.ptr.update(from: m, count: m.count)
        moe.lprMask = UnsafePointer(lprBuffer.ptr)
    }

    /// Backward of `lossScale * sum of token losses` plus `moe.lbWeight` times each MoE layer's
    /// load-balance loss; accumulates into trainable gradients.
    public func backward(batch b: Int, seq T: Int, lossScale: Float) {
        let n = b * T, d = config.hiddenSize, V = config.vocabSize
        Profile.measure("cross entropy") { CrossEntropy.backward(logits.ptr, targets: targets.ptr, n: n, vocab: V, scale: lossScale) }
        // Which parts need the gradient of their input: anything trainable strictly below them.
        let embedT = embed.trainable
        var belowAttn = [Bool](repeating: false, count: blocks.count)
        var belowFFN = belowAttn
        var acc = embedT
        for (l, blk) in blocks.enumerated() {
            belowAttn[l] = acc
            acc = acc || blk.attnTrainable
            belowFFN[l] = acc
            acc = acc || blk.ffnTrainable
        }
        let needTrunk = acc || norm.weight.trainable
        // logits = norm(x) E^T  ->  dnorm = dlogits E, dE += dlogits^T norm(x)
        if needTrunk {
            gemm(transB: false, M: n, N: d, K: V, A: logits.ptr, lda: V, B: lmHead.operand, ldb: d, C: dln.ptr, ldc: d)
        }
        if lmHead.trainable {
            sgemm(
                transA: true, transB: false, M: V, N: d, K: n, A: logits.ptr, lda: V,
                B: norm.out.ptr, ldb: d, beta: 1, C: lmHead.g, ldc: d)
        }
        guard needTrunk else { return }
        Profile.measure("zero") { dres.zero() }
        norm.backward(dln.ptr, inp: res[blocks.count].ptr, dinp: acc ? dres.ptr : nil, n: n)
        guard acc else { return }
        for l in stride(from: blocks.count - 1, through: 0, by: -1) {
            let blk = blocks[l]
            // out = mid + ffn(ln2(mid)): dres is d(out) and, through the residual, part of d(mid)
            if blk.ffnTrainable || belowFFN[l] {
                let needLn = blk.ln2.weight.trainable || belowFFN[l]
                if needLn { Profile.measure("zero") { dln.zero() } }
                blk.ffn.backward(dres.ptr, x: blk.ln2.out.ptr, dx: needLn ? dln.ptr : nil, n: n)
                if needLn { blk.ln2.backward(dln.ptr, inp: blk.mid.ptr, dinp: belowFFN[l] ? dres.ptr : nil, n: n) }
            }
            guard belowFFN[l] else { return }
            // mid = x + attn(ln1(x))
            if blk.attnTrainable || belowAttn[l] {
                let needLn = blk.ln1.weight.trainable || belowAttn[l]
                if needLn { Profile.measure("zero") { dln.zero() } }
                blk.attn.backward(
                    dres.ptr, inp: blk.ln1.out.ptr, dinp: needLn ? dln.ptr : nil,
                    positions: positions.ptr, batch: b, seq: T)
                if needLn { blk.ln1.backward(dln.ptr, inp: res[l].ptr, dinp: belowAttn[l] ? dres.ptr : nil, n: n) }
            }
            guard belowAttn[l] else { return }
        }
        // x0 = E[ids]
        if embedT { Embedding.backward(embed.g, ids: ids.ptr, dout: dres.ptr, n: n, dim: d) }
    }
}
