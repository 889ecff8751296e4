import Foundation

/// Autoregressive decoding with a KV cache: greedy over a batch of prompts of different lengths,
/// and beam search with a length penalty. Generation stops at an end token (EOS, or a token that
/// contains a newline when `stopAtNewline`) or after the per-prompt token limit.
public final class Generator: @unchecked Sendable {
    public let model: DecoderModel
    public let stopTokens: Set<Int32>

    /// `stopTokens`: EOS ids and, for ALMA-style prompts, every token containing a newline.
    public init(model: DecoderModel, stopTokens: Set<Int32>) {
        self.model = model
        self.stopTokens = stopTokens
    }

    /// EOS plus every vocabulary token whose bytes contain "\n".
    public static func stopTokens(tokenizer: BPETokenizer, eos: [Int32], stopAtNewline: Bool = true) -> Set<Int32> {
        var s = Set(eos)
        if stopAtNewline {
            let nl = ByteLevel.byteToScalar[10]
            for (t, id) in tokenizer.vocab where t.unicodeScalars.contains(nl) { s.insert(id) }
        }
        return s
    }

    func argmax(_ row: UnsafePointer<Float>, _ V: Int) -> Int32 {
        var best = 0
        for j in 1..<V where row[j] > row[best] { best = j }
        return Int32(best)
    }

    /// Greedy decoding of all prompts at once. Returns the generated ids of each prompt, ending
    /// with the stop token that ended it (if any).
    public func greedy(_ prompts: [[Int32]], maxNew: [Int]) throws -> [[Int32]] {
        let B = prompts.count, V = model.config.vocabSize
        guard B > 0 else { return [] }
        let T = prompts.map(\.count).max()!
        let maxLen = T + (maxNew.max() ?? 0) + 1
        let cache = model.makeCache(batch: B, maxLen: maxLen)
        // prefill, right-padded: causal attention keeps every real position exact
        var ids = [Int32](repeating: 0, count: B * T)
        for (s, p) in prompts.enumerated() { for (i, t) in p.enumerated() { ids[s * T + i] = t } }
        try model.setBatch(ids: ids, batch: B, seq: T)
        // logits of each prompt's last position only, in rows 0..<B
        try model.forward(batch: B, seq: T, cache: cache, logitRows: (0..<B).map { $0 * T + prompts[$0].count - 1 })
        var next = (0..<B).map { s in argmax(model.logits.ptr + s * V, V) }
        var out = [[Int32]](repeating: [], count: B)
        var done = [Bool](repeating: false, count: B)
        var pos = prompts.map { Int32($0.count) }
        for s in 0..<B {
            if maxNew[s] <= 0 { done[s] = true; continue }
            out[s].append(next[s])
            if stopTokens.contains(next[s]) || out[s].count >= maxNew[s] { done[s] = true }
        }
        while done.contains(false) {
            try model.decodeStep(ids: next, positions: pos, cache: cache)
            for s in 0..<B {
                pos[s] += 1
                guard !done[s] else { continue }
                next[s] = argmax(model.logits.ptr + s * V, V)
                out[s].append(next[s])
                if stopTokens.contains(next[s]) || out[s].count >= maxNew[s] { done[s] = true }
            }
        }
        return out
    }

    /// Reference greedy decoding without a cache: a full forward over the whole sequence per token.
    public func greedyUncached(_ prompt: [Int32], maxNew: Int) throws -> [Int32] {
        let V = model.config.vocabSize
        var seq = prompt, out: [Int32] = []
        while out.count < maxNew {
            try model.setBatch(ids: seq, batch: 1, seq: seq.count)
            model.forward(batch: 1, seq: seq.count)
            let t = argmax(model.logits.ptr + (seq.count - 1) * V, V)
            out.append(t); seq.append(t)
            if stopTokens.contains(t) { break }
        }
        return out
    }

    /// Beam search for one prompt: `beams` hypotheses, finished ones scored by
    /// `sum log p / length^lengthPenalty` (length = generated tokens including the stop token).
    /// Stops when `beams` hypotheses are finished and no live beam can still beat the worst of them
    /// at its current length, or at `maxNew` (live beams then count as finished).
    public func beam(_ prompt: [Int32], maxNew: Int, beams K: Int, lengthPenalty: Double = 1) throws -> [Int32] {
        try beamSearch(prompt, maxNew: maxNew, beams: K, lengthPenalty: lengthPenalty).tokens
    }

    /// Beam search returning the best hypothesis and its summed log-probability.
    public func beamSearch(_ prompt: [Int32], maxNew: Int, beams K: Int, lengthPenalty: Double = 1) throws -> (tokens: [Int32], logProb: Double) {
        let V = model.config.vocabSize
        guard maxNew > 0 else { return ([], 0) }
        let maxLen = prompt.count + maxNew + 1
        let cache = model.makeCache(batch: K, maxLen: maxLen)
        // prefill once, then copy the prompt's cache rows into every beam
        let one = model.makeCache(batch: 1, maxLen: maxLen)
        try model.setBatch(ids: prompt, batch: 1, seq: prompt.count)
        try model.forward(batch: 1, seq: prompt.count, cache: one, logitRows: [prompt.count - 1])
        for (c, o) in zip(cache, one) {
            for b in 0..<K {
                (c.k.ptr + b * maxLen * c.kd).update(from: o.k.ptr, count: prompt.count * c.kd)
                (c.v.ptr + b * maxLen * c.kd).update(from: o.v.ptr, count: prompt.count * c.kd)
            }
        }
        var logp = [[Float]](repeating: logSoftmax(model.logits.ptr, V), count: 1)
        var live: [(tokens: [Int32], score: Double)] = [([], 0)]
        var finished: [(tokens: [Int32], score: Double)] = []
        func norm(_ s: Double, _ len: Int) -> Double { s / pow(Double(max(len, 1)), lengthPenalty) }
        var step = 0
        while true {
            // candidates: top 2K continuations over all live beams
            var cands: [(score: Double, beam: Int, token: Int32)] = []
            for (bi, b) in live.enumerated() {
                let row = logp[bi]
                var top: [(Float, Int)] = []
                for j in 0..<V {
                    if top.count < 2 * K {
                        top.append((row[j], j)); top.sort { $0.0 > $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
                    } else if row[j] > top.last!.0 {
                        top[top.count - 1] = (row[j], j); top.sort { $0.0 > $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
                    }
                }
                for (lp, j) in top { cands.append((b.score + Double(lp), bi, Int32(j))) }
            }
            cands.sort { $0.score > $1.score || ($0.score == $1.score && ($0.beam, $0.token) < ($1.beam, $1.token)) }
            var next: [(tokens: [Int32], score: Double)] = [], parents: [Int] = []
            for c in cands {
                let toks = live[c.beam].tokens + [c.token]
                if stopTokens.contains(c.token) {
                    if finished.count < K || norm(c.score, toks.count) > finished.map({ norm($0.score, $0.tokens.count) }).min()! {
                        finished.append((toks, c.score))
                    }
                } else if next.count < K {
                    next.append((toks, c.score)); parents.append(c.beam)
                }
                if next.count == K { break }
            }
            step += 1
            let worstFinished = finished.count >= K ? finished.map { norm($0.score, $0.tokens.count) }.sorted(by: >)[K - 1] : -Double.infinity
            let bestLive = next.map { norm($0.score, $0.tokens.count) }.max() ?? -Double.infinity
            if next.isEmpty || step >= maxNew || (finished.count >= K && bestLive <= worstFinished) {
                if step >= maxNew { finished += next }
                break
            }
            // advance the live beams by one token
            for c in cache { c.reorder(parents + Array(repeating: parents[0], count: K - parents.count), len: prompt.count + step - 1) }
            live = next
            let toks = live.map { $0.tokens.last! } + Array(repeating: live[0].tokens.last!, count: K - live.count)
            let pos = [Int32](repeating: Int32(prompt.count + step - 1), count: K)
            try model.decodeStep(ids: toks, positions: pos, cache: cache)
            logp = (0..<live.count).map { logSoftmax(model.logits.ptr + $0 * V, V) }
        }
        let best = finished.max { norm($0.score, $0.tokens.count) < norm($1.score, $1.tokens.count) }
        return (best?.tokens ?? [], best?.score ?? 0)
    }

    func logSoftmax(_ row: UnsafePointer<Float>, _ V: Int) -> [Float] {
        let l = VectorMath.logSumExp(row, V)
        return (0..<V).map { row[$0] - l }
    }
}

/// Translates text with a model and its tokenizer using ALMA's prompt.
public final class Translator: @unchecked Sendable {
    public let generator: Generator
    public let tokenizer: BPETokenizer
    public var beams = 1
    public var lengthPenalty = 1.0
    public var batchSize = 8
    /// Generated tokens allowed per source token, plus a constant, capped.
    public var maxRatio = 2.0, maxExtra = Translator.defaultExtra, maxCap = Translator.defaultCap
    /// Tokens generated by `translate` so far (stop tokens included), for throughput reports.
    public private(set) var generatedTokens = 0
    public static let defaultExtra = 10, defaultCap = 256

    public init(model: DecoderModel, tokenizer: BPETokenizer) {
        self.tokenizer = tokenizer
        let eos = model.config.eosTokenIds.map(Int32.init)
        generator = Generator(model: model, stopTokens: Generator.stopTokens(tokenizer: tokenizer, eos: eos))
    }

    func limit(_ src: String) -> Int { Self.limit(tokenizer.encode(src).count, ratio: maxRatio, extra: maxExtra, cap: maxCap) }
    static func limit(_ sourceTokens: Int, ratio: Double, extra: Int, cap: Int) -> Int { min(cap, Int(ratio * Double(sourceTokens)) + extra) }

    /// The memory plan of translating `sources` (the longest batch decides), without a model:
    /// `config` and `tokenizer` suffice (`--dry-run`).
    public static func memoryPlan(
        _ sources: [String], _ d: Direction, config: ModelConfig, tokenizer: BPETokenizer, batchSize: Int, beams: Int, maxRatio: Double,
        maxNewTokens: Int = defaultCap, dtype: DType = .f32
    ) -> MemoryPlan {
        let lens = sources.map { Prompt.ids($0, d, tokenizer: tokenizer).count }
        let newTokens = sources.map { limit(tokenizer.encode($0).count, ratio: maxRatio, extra: defaultExtra, cap: maxNewTokens) }.max() ?? 0
        // greedy batches run longest-first, so the first batch holds the longest prompt; a beam
        // search decodes one prompt as `beams` sequences
        let batch = beams > 1 ? beams : min(batchSize, max(1, sources.count))
        return MemoryPlan.decoding(config: config, batch: batch, promptTokens: lens.max() ?? 1, newTokens: newTokens, dtype: dtype)
    }

    /// The model's context (`max_position_embeddings`): a prompt must fit with room for one
    /// generated token; generation stops at the context's end.
    public var context: Int { generator.model.config.maxPositionEmbeddings }

    /// Text of generated ids: stop tokens removed, cut at the first newline, trimmed.
    public func text(_ ids: [Int32]) -> String {
        let eos = Set(generator.model.config.eosTokenIds.map(Int32.init))
        var s = tokenizer.decode(ids.filter { !eos.contains($0) })
        if let nl = s.firstIndex(of: "\n") { s = String(s[..<nl]) }
        return s.trimmingCharacters(in: .whitespaces)
    }

    /// Translations in input order. Prompts are batched longest-first (greedy) so a batch pads
    /// little. A source whose prompt does not fit the model's context throws, naming the segment
    /// (1-based), before anything is decoded.
    public func translate(_ sources: [String], _ d: Direction, progress: ((Int) -> Void)? = nil) throws -> [String] {
        var out = [String](repeating: "", count: sources.count)
        let prompts = sources.map { Prompt.ids($0, d, tokenizer: tokenizer) }
        if let i = prompts.firstIndex(where: { $0.count >= context }) {
            throw ModelError.contextOverflow(
                what: "segment \(i + 1) (its translation prompt, max_position_embeddings \(context))",
                tokens: prompts[i].count + 1, limit: context)
        }
        let limits = sources.indices.map { min(limit(sources[$0]), context - prompts[$0].count) }
        let order = sources.indices.sorted { (prompts[$0].count, $0) > (prompts[$1].count, $1) }
        var doneCount = 0
        if beams > 1 {
            for i in order {
                let ids = try generator.beam(prompts[i], maxNew: limits[i], beams: beams, lengthPenalty: lengthPenalty)
                generatedTokens += ids.count
                out[i] = text(ids)
                doneCount += 1; progress?(doneCount)
            }
            return out
        }
        for start in stride(from: 0, to: order.count, by: batchSize) {
            let idx = Array(order[start..<min(start + batchSize, order.count)])
            let gen = try generator.greedy(idx.map { prompts[$0] }, maxNew: idx.map { limits[$0] })
            for (k, i) in idx.enumerated() { out[i] = text(gen[k]) }
            generatedTokens += gen.reduce(0) { $0 + $1.count }
            doneCount += idx.count; progress?(doneCount)
        }
        return out
    }
}
