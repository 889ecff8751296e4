import Foundation

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
