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
