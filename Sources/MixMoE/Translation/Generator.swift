import Foundation

/// Autoregressive decoding with a KV cache: greedy and beam search over many prompts at once.
///
/// Both run *continuous batching* over a fixed number of cache rows ("slots"): prompts are
/// admitted in the order given while slots are free (one prefill for all admitted at once, packed
/// without padding), every decoding step runs all live sequences of all prompts through the model together,
/// and a finished sequence frees its slot for the next prompt at once. A prompt's result does not
/// depend on what else is in the batch (each row attends to its own cache row only), so results
/// equal decoding the prompts one by one (up to float summation order in the GEMMs).
///
/// Generation stops at a stop token (EOS, or for ALMA prompts any token containing a newline) or
/// after the per-prompt token limit; the stop token is kept at the end of the result.
public final class Generator: @unchecked Sendable {
    public let model: DecoderModel
    public let stopTokens: Set<Int32>
    /// Where decoding time went, summed over every call (for reports and profiles).
    public private(set) var stats = DecodeStats()

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

    /// A cache of `slots` rows for prompts up to `maxLen` positions with their generations.
    private func slotCache(slots: Int, maxLen: Int) -> [LayerCache] { model.makeCache(batch: slots, maxLen: maxLen) }

    /// Prefills `prompts` (packed without padding) into cache rows `slots`; logits rows
    /// `0..<prompts.count` are each prompt's last position.
    func prefillRows(_ prompts: [[Int32]], slots: [Int], cache: [LayerCache]) throws {
        let t0 = monotonicSeconds()
        try model.prefill(prompts, slots: slots, cache: cache)
        stats.prefills += 1; stats.prefillPrompts += prompts.count; stats.prefillTokens += prompts.reduce(0) { $0 + $1.count }
        stats.prefillSeconds += monotonicSeconds() - t0
    }

    /// One decoding step of `ids.count` rows (see `DecoderModel.decodeStep`), timed.
    func stepRows(_ ids: [Int32], positions: [Int32], slots: [Int32], cache: [LayerCache]) throws {
        let t0 = monotonicSeconds()
        try model.decodeStep(ids: ids, positions: positions, slots: slots, cache: cache)
        stats.steps += 1; stats.stepRows += ids.count
        stats.stepSeconds += monotonicSeconds() - t0
    }

    /// Greedy decoding of every prompt, at most `slots` sequences at a time (default: all at
    /// once). Returns the generated ids of each prompt, ending with the stop token that ended it
    /// (if any); `onFinish(i, ids)` is called as prompt `i` finishes.
    public func greedy(
        _ prompts: [[Int32]], maxNew: [Int], slots: Int? = nil, onFinish: ((Int, [Int32]) -> Void)? = nil
    ) throws -> [[Int32]] {
        let n = prompts.count, V = model.config.vocabSize
        precondition(maxNew.count == n && prompts.allSatisfy { !$0.isEmpty }, "one limit per non-empty prompt")
        guard n > 0 else { return [] }
        let S = max(1, min(slots ?? n, n))
        let maxLen = (0..<n).map { prompts[$0].count + max(maxNew[$0], 0) }.max()! + 1
        let cache = slotCache(slots: S, maxLen: maxLen)
        var out = [[Int32]](repeating: [], count: n)
        var free = Array((0..<S).reversed())
        var live: [(prompt: Int, slot: Int, pos: Int32, last: Int32)] = []
        var next = 0  // the next prompt to admit
        // appends t to prompt i's output; true when the prompt is finished
        func emit(_ i: Int, _ t: Int32) -> Bool {
            out[i].append(t)
            let done = stopTokens.contains(t) || out[i].count >= maxNew[i]
            if done { onFinish?(i, out[i]) }
            return done
        }
        while next < n || !live.isEmpty {
            // admit waiting prompts into every free slot: one prefill for all of them
            var admit: [Int] = []
            while admit.count < free.count && next < n {
                if maxNew[next] <= 0 { onFinish?(next, []) } else { admit.append(next) }
                next += 1
            }
            if !admit.isEmpty {
                let slots = admit.map { _ in free.removeLast() }
                try prefillRows(admit.map { prompts[$0] }, slots: slots, cache: cache)
                for (r, i) in admit.enumerated() {
                    let t = argmax(model.logits.ptr + r * V, V)
                    if emit(i, t) { free.append(slots[r]) } else { live.append((i, slots[r], Int32(prompts[i].count), t)) }
                }
                if !free.isEmpty && next < n { continue }  // some finished at once: fill their slots first
            }
            guard !live.isEmpty else { continue }
            // one step of every live sequence
            try stepRows(live.map(\.last), positions: live.map(\.pos), slots: live.map { Int32($0.slot) }, cache: cache)
            var still: [(prompt: Int, slot: Int, pos: Int32, last: Int32)] = []
            for (r, var l) in live.enumerated() {
                let t = argmax(model.logits.ptr + r * V, V)
                if emit(l.prompt, t) {
                    free.append(l.slot)
                } else {
                    l.pos += 1; l.last = t
                    still.append(l)
                }
            }
            live = still
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

    /// Beam search for one prompt (see `beamSearch(_:maxNew:beams:lengthPenalty:segments:onFinish:)`).
    public func beam(_ prompt: [Int32], maxNew: Int, beams K: Int, lengthPenalty: Double = 1) throws -> [Int32] {
        try beamSearch(prompt, maxNew: maxNew, beams: K, lengthPenalty: lengthPenalty).tokens
    }

    /// Beam search for one prompt, returning the best hypothesis and its summed log-probability.
    public func beamSearch(_ prompt: [Int32], maxNew: Int, beams K: Int, lengthPenalty: Double = 1) throws -> (tokens: [Int32], logProb: Double) {
        try beamSearch([prompt], maxNew: [maxNew], beams: K, lengthPenalty: lengthPenalty)[0]
    }

    /// Beam search with `K` beams for every prompt, `segments` prompts at a time (default all),
    /// all their beams decoded together. Returns each prompt's best hypothesis (ending with its
    /// stop token, if any) and its summed log-probability; `onFinish(i, ids)` is called as prompt
    /// `i` finishes.
    ///
    /// The rule is CTranslate2's (`BeamSearch::search`, patience 1), so that both engines give the
    /// same translations: each step takes the `2K` best continuations of the live beams (the first
    /// step expands the prompt alone); of the first `K`, each ending in a stop token (or any, at
    /// the last step) becomes a finished hypothesis and its place goes to the next candidate beyond
    /// the first `K` that does not stop. A prompt is done once `K` hypotheses have finished, or,
    /// with `lengthPenalty` 0, once the best candidate of a step has stopped. The answer is the
    /// finished hypothesis with the best `logProb / length^lengthPenalty` (length counts the stop
    /// token).
    public func beamSearch(
        _ prompts: [[Int32]], maxNew: [Int], beams K: Int, lengthPenalty: Double = 1, segments: Int? = nil,
        onFinish: ((Int, [Int32]) -> Void)? = nil
    ) throws -> [(tokens: [Int32], logProb: Double)] {
        let n = prompts.count, V = model.config.vocabSize
        precondition(K >= 1 && maxNew.count == n && prompts.allSatisfy { !$0.isEmpty }, "one limit per non-empty prompt, K >= 1")
        guard n > 0 else { return [] }
        let G = max(1, min(segments ?? n, n))  // prompts in flight, K cache rows each
        let maxLen = (0..<n).map { prompts[$0].count + max(maxNew[$0], 0) }.max()! + 1
        let cache = slotCache(slots: G * K, maxLen: maxLen)
        var results = [(tokens: [Int32], logProb: Double)](repeating: ([], 0), count: n)
        var freeGroups = Array((0..<G).reversed())
        var live: [BeamGroup] = []
        var next = 0
        func finish(_ g: BeamGroup) {
            let best = g.best(lengthPenalty: lengthPenalty)
            results[g.prompt] = best
            freeGroups.append(g.slots[0] / K)
            onFinish?(g.prompt, best.tokens)
        }
        while next < n || !live.isEmpty {
            var admit: [BeamGroup] = []
            while admit.count < freeGroups.count && next < n {
                if maxNew[next] <= 0 {
                    onFinish?(next, [])
                } else {
                    let g = freeGroups[freeGroups.count - 1 - admit.count]
                    admit.append(BeamGroup(prompt: next, promptLength: prompts[next].count, maxNew: maxNew[next], slots: Array((g * K)..<((g + 1) * K))))
                }
                next += 1
            }
            freeGroups.removeLast(admit.count)
            var rows: [(group: BeamGroup, first: Int)] = []
            if !admit.isEmpty {
                // the prompt alone is the first beam, in the group's first slot
                try prefillRows(admit.map { prompts[$0.prompt] }, slots: admit.map { $0.slots[0] }, cache: cache)
                rows = admit.enumerated().map { ($1, $0) }
            } else {
                guard !live.isEmpty else { continue }
                var ids: [Int32] = [], pos: [Int32] = [], slots: [Int32] = []
                for g in live {
                    rows.append((g, ids.count))
                    for b in g.beams {
                        ids.append(b.tokens.last!); pos.append(Int32(g.promptLength + g.step - 1)); slots.append(Int32(b.slot))
                    }
                }
                try stepRows(ids, positions: pos, slots: slots, cache: cache)
                live = []
            }
            for (g, first) in rows {
                let done = g.advance(logits: model.logits.ptr + first * V, vocab: V, beams: K, stopTokens: stopTokens, earlyExit: lengthPenalty == 0) {
                    src, dst, len in
                    for c in cache { c.copy(row: src, to: dst, len: len) }
                }
                if done { finish(g) } else { live.append(g) }
            }
        }
        return results
    }

    func logSoftmax(_ row: UnsafePointer<Float>, _ V: Int) -> [Float] {
        let l = VectorMath.logSumExp(row, V)
        return (0..<V).map { row[$0] - l }
    }
}

/// Counts and times of a generator's prefills and decoding steps.
public struct DecodeStats: Sendable, CustomStringConvertible {
    public var prefills = 0, prefillPrompts = 0, prefillTokens = 0, prefillSeconds = 0.0
    public var steps = 0, stepRows = 0, stepSeconds = 0.0

    public var description: String {
        String(
            format: "%d prefills (%d prompts, %d tokens) %.3f s; %d steps of %.1f rows on average %.3f s",
            prefills, prefillPrompts, prefillTokens, prefillSeconds, steps, Double(stepRows) / Double(max(steps, 1)), stepSeconds)
    }
}

/// The `k` largest entries of `row`, best first; equal values keep the lower index first.
func topK(_ row: UnsafePointer<Float>, _ V: Int, _ k: Int) -> [(value: Float, index: Int32)] {
    var top: [(value: Float, index: Int32)] = []
    top.reserveCapacity(k + 1)
    for j in 0..<V where top.count < k || row[j] > top[top.count - 1].value {
        var at = top.count
        while at > 0 && top[at - 1].value < row[j] { at -= 1 }
        top.insert((row[j], Int32(j)), at: at)
        if top.count > k { top.removeLast() }
    }
    return top
}

/// One prompt's beams during `Generator.beamSearch`: live beams (tokens, summed log-probability,
/// cache row), finished hypotheses, and the `K` cache rows it owns.
final class BeamGroup {
    let prompt: Int, promptLength: Int, maxNew: Int
    let slots: [Int]
    /// Live beams; before the first step, the prompt alone (no tokens) in `slots[0]`.
    var beams: [(tokens: [Int32], score: Double, slot: Int)]
    var finished: [(tokens: [Int32], score: Double)] = []
    /// Steps taken = tokens in every live beam.
    var step = 0
    /// CTranslate2's `top_beam_finished`: the best candidate of some step stopped.
    var topFinished = false

    init(prompt: Int, promptLength: Int, maxNew: Int, slots: [Int]) {
        self.prompt = prompt; self.promptLength = promptLength; self.maxNew = maxNew; self.slots = slots
        beams = [([], 0, slots[0])]
    }

    /// One step from the log-probabilities of the live beams (`logits` rows `0..<beams.count`):
    /// candidates, finished hypotheses, new beams and their cache rows. A new beam takes its
    /// parent's row when it is the parent's first child; otherwise a row no child kept, into which
    /// `copy(src, dst, len)` copies the parent's history. Returns true when the prompt is done.
    func advance(
        logits: UnsafePointer<Float>, vocab V: Int, beams K: Int, stopTokens: Set<Int32>, earlyExit: Bool,
        copy: (Int, Int, Int) -> Void
    ) -> Bool {
        // the 2K best continuations over all live beams: log p = logit - logsumexp(row)
        var cands: [(score: Double, beam: Int, token: Int32)] = []
        for (bi, b) in beams.enumerated() {
            let row = logits + bi * V, lse = VectorMath.logSumExp(row, V)
            for (v, j) in topK(row, V, 2 * K) { cands.append((b.score + Double(v - lse), bi, j)) }
        }
        cands.sort { $0.score > $1.score || ($0.score == $1.score && ($0.beam, $0.token) < ($1.beam, $1.token)) }
        let last = step + 1 >= maxNew
        var chosen: [Int] = []  // candidate index of each new beam
        var secondary = K
        for k in 0..<min(K, cands.count) {
            var c = k
            if stopTokens.contains(cands[k].token) || last {
                if k == 0 { topFinished = true }
                finished.append((beams[cands[k].beam].tokens + [cands[k].token], cands[k].score))
                // the next candidate beyond the first K that does not stop takes this place
                // (none left: the stopped one goes on, as in CTranslate2)
                if let j = (secondary..<cands.count).first(where: { !stopTokens.contains(cands[$0].token) }) {
                    c = j; secondary = j + 1
                }
            }
            chosen.append(c)
        }
        step += 1
        if last || (earlyExit ? topFinished && !finished.isEmpty : finished.count >= K) { return true }
        // cache rows: a parent's first child keeps its row, the others take rows nobody kept
        let parents = chosen.map { cands[$0].beam }
        var kept = Set<Int>(), rowOf = [Int](repeating: -1, count: parents.count)
        for (k, p) in parents.enumerated() where !kept.contains(p) { kept.insert(p); rowOf[k] = beams[p].slot }
        var spare = slots.filter { s in !parents.indices.contains { rowOf[$0] == s } }
        let history = promptLength + step - 1  // positions in the cache: the prompt and the tokens fed so far
        for k in parents.indices where rowOf[k] < 0 {
            rowOf[k] = spare.removeFirst()
            copy(beams[parents[k]].slot, rowOf[k], history)
        }
        beams = chosen.enumerated().map { k, c in (beams[cands[c].beam].tokens + [cands[c].token], cands[c].score, rowOf[k]) }
        return false
    }

    /// The finished hypothesis with the best length-normalised score (first registered on ties).
    func best(lengthPenalty: Double) -> (tokens: [Int32], logProb: Double) {
        func norm(_ h: (tokens: [Int32], score: Double)) -> Double { h.score / pow(Double(max(h.tokens.count, 1)), lengthPenalty) }
        var best = finished[0]
        for h in finished.dropFirst() where norm(h) > norm(best) { best = h }
        return (best.tokens, best.score)
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
        // the cache holds `batchSize` prompts (with `beams` rows each) of the longest prompt's
        // length plus the longest generation; a prefill runs at most `batchSize` prompts
        let prompts = min(batchSize, max(1, sources.count))
        return MemoryPlan.decoding(
            config: config, batch: prompts * max(beams, 1), promptTokens: lens.max() ?? 1, newTokens: newTokens, dtype: dtype,
            prefillBatch: prompts)
    }

    /// A segment with nothing to translate: empty or whitespace only. Its translation is "".
    public static func isBlank(_ source: String) -> Bool { source.allSatisfy(\.isWhitespace) }

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

    /// The prompt ids of `src` and the tokens its translation may take (the length rule, cut to
    /// the context). Throws when the prompt leaves no room in the context.
    public func prompt(_ src: String, _ d: Direction) throws -> (ids: [Int32], maxNew: Int) {
        let ids = Prompt.ids(src, d, tokenizer: tokenizer)
        guard ids.count < context else {
            throw ModelError.contextOverflow(what: "the translation prompt (max_position_embeddings \(context))", tokens: ids.count + 1, limit: context)
        }
        return (ids, min(limit(src), context - ids.count))
    }

    /// Translations in input order, `batchSize` segments decoded together (continuous batching,
    /// longest prompt first; with `beams` > 1, each segment's beams too). A source whose prompt does not fit the model's context throws, naming the segment
    /// (1-based), before anything is decoded.
    public func translate(_ sources: [String], _ d: Direction, progress: ((Int) -> Void)? = nil) throws -> [String] {
        // a blank segment (empty or spaces) translates to a blank line, not to what the model
        // would invent from the bare prompt; the others keep their order
        let kept = sources.indices.filter { !Self.isBlank(sources[$0]) }
        if kept.count < sources.count {
            var out = [String](repeating: "", count: sources.count)
            let done = sources.count - kept.count
            progress?(done)
            for (i, t) in zip(kept, try translate(kept.map { sources[$0] }, d, progress: progress.map { p in { p($0 + done) } })) { out[i] = t }
            return out
        }
        var out = [String](repeating: "", count: sources.count)
        let prompts = sources.map { Prompt.ids($0, d, tokenizer: tokenizer) }
        if let i = prompts.firstIndex(where: { $0.count >= context }) {
            throw ModelError.contextOverflow(
                what: "segment \(i + 1) (its translation prompt, max_position_embeddings \(context))",
                tokens: prompts[i].count + 1, limit: context)
        }
        let limits = sources.indices.map { min(limit(sources[$0]), context - prompts[$0].count) }
        let order = sources.indices.sorted { (prompts[$0].count, $0) > (prompts[$1].count, $1) }
        // longest first: a prefill pads little, and the cache's length is set by the first prompts
        var doneCount = 0
        func finished(_ k: Int, _ ids: [Int32]) {
            out[order[k]] = text(ids)
            generatedTokens += ids.count
            doneCount += 1; progress?(doneCount)
        }
        let ordered = order.map { prompts[$0] }, caps = order.map { limits[$0] }
        if beams > 1 {
            _ = try generator.beamSearch(ordered, maxNew: caps, beams: beams, lengthPenalty: lengthPenalty, segments: batchSize, onFinish: finished)
        } else {
            _ = try generator.greedy(ordered, maxNew: caps, slots: batchSize, onFinish: finished)
        }
        return out
    }
}
