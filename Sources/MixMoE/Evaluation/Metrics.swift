import Foundation

/// A corpus-level score with a sacreBLEU-style signature.
public struct MetricScore: Sendable {
    public var name: String
    public var score: Double
    public var signature: String
    public var verbose: String

    public var json: [String: Any] {
        ["name": name, "score": score, "signature": signature, "verbose_score": verbose, "compatible_with": "sacrebleu 2.x"]
    }
}

/// Scores as sacreBLEU 2.x does (one reference per segment, case-sensitive).
public enum Metrics {
    /// Corpus BLEU: n = 1...4, clipped counts, brevity penalty, exponential smoothing ('exp'),
    /// no effective order (sacreBLEU's corpus defaults).
    public static func bleu(hypotheses: [String], references: [String], tokenize: SacreTokenizer = .t13a) -> MetricScore {
        precondition(hypotheses.count == references.count, "hypotheses and references differ in count")
        var correct = [Int](repeating: 0, count: 4), total = correct
        var sysLen = 0, refLen = 0
        var interner = Interner()
        for (h, r) in zip(hypotheses, references) {
            let ht = interner.ids(pySplit(tokenize(pyRstrip(Array(h.unicodeScalars)))))
            let rt = interner.ids(pySplit(tokenize(pyRstrip(Array(r.unicodeScalars)))))
            sysLen += ht.count; refLen += rt.count
            for n in 1...4 {
                let hc = ngramCounts(ht, n), rc = ngramCounts(rt, n)
                for (g, c) in hc {
                    total[n - 1] += c
                    if let rcount = rc[g] { correct[n - 1] += min(c, rcount) }
                }
            }
        }
        var bp = 1.0
        if sysLen < refLen { bp = sysLen > 0 ? exp(1 - Double(refLen) / Double(sysLen)) : 0 }
        var prec = [Double](repeating: 0, count: 4)
        var score = 0.0
        if correct.contains(where: { $0 > 0 }) {
            var smooth = 1.0
            for n in 0..<4 {
                if total[n] == 0 { break }
                if correct[n] == 0 {
                    smooth *= 2
                    prec[n] = 100 / (smooth * Double(total[n]))
                } else {
                    prec[n] = 100 * Double(correct[n]) / Double(total[n])
                }
            }
            score = bp * exp(prec.map { $0 == 0 ? -9_999_999_999 : log($0) }.reduce(0, +) / 4)
        }
        let verbose = String(
            format: "%.2f %@ (BP = %.3f ratio = %.3f hyp_len = %d ref_len = %d)", score,
            prec.map { String(format: "%.1f", $0) }.joined(separator: "/"), bp,
            refLen > 0 ? Double(sysLen) / Double(refLen) : 0, sysLen, refLen)
        return MetricScore(
            name: "BLEU", score: score,
            signature: "nrefs:1|case:mixed|eff:no|tok:\(tokenize.rawValue)|smooth:exp|version:mixmoe", verbose: verbose)
    }

    /// chrF (wordOrder 0) or chrF++ (wordOrder 2): character n-grams 1...6 of the text without
    /// whitespace, word n-grams after chrF's punctuation split, statistics summed over the corpus,
    /// precision and recall averaged over the effective orders, F-beta with beta = 2.
    public static func chrf(
        hypotheses: [String], references: [String], wordOrder: Int = 0,
        charOrder: Int = 6, beta: Double = 2
    ) -> MetricScore {
        precondition(hypotheses.count == references.count, "hypotheses and references differ in count")
        let orders = charOrder + wordOrder
        var stats = [Int](repeating: 0, count: 3 * orders)  // per order: hyp, ref, match
        for (h, r) in zip(hypotheses, references) {
            let hs = Array(h.unicodeScalars), rs = Array(r.unicodeScalars)
            let hc = hs.filter { !pyIsSpace($0) }.map(\.value), rc = rs.filter { !pyIsSpace($0) }.map(\.value)
            var k = 0
            for n in 1...charOrder {
                add(ngramCounts(hc, n), ngramCounts(rc, n), into: &stats, at: k); k += 1
            }
            if wordOrder > 0 {
                let hw = chrfWords(hs), rw = chrfWords(rs)
                var interner = Interner()
                let hi = interner.ids(hw), ri = interner.ids(rw)
                for n in 1...wordOrder { add(ngramCounts(hi, n), ngramCounts(ri, n), into: &stats, at: k); k += 1 }
            }
        }
        let factor = beta * beta
        var avgP = 0.0, avgR = 0.0, eff = 0
        for i in 0..<orders {
            let nh = stats[3 * i], nr = stats[3 * i + 1], nm = stats[3 * i + 2]
            if nh > 0 && nr > 0 {
                avgP += Double(nm) / Double(nh); avgR += Double(nm) / Double(nr); eff += 1
            }
        }
        var score = 0.0
        if eff > 0 {
            avgP /= Double(eff); avgR /= Double(eff)
            if avgP + avgR > 0 { score = 100 * (1 + factor) * avgP * avgR / (factor * avgP + avgR) }
        }
        let b = Int(beta)
        let name = "chrF\(b)" + (wordOrder > 0 ? String(repeating: "+", count: wordOrder == 2 ? 2 : 1) : "")
        return MetricScore(
            name: name, score: score,
            signature: "nrefs:1|case:mixed|eff:yes|nc:\(charOrder)|nw:\(wordOrder)|space:no|version:mixmoe",
            verbose: String(format: "%.2f", score))
    }

    /// Per-order statistics of one segment: hyp count (0 when the reference has none), ref count, matches.
    static func add<K: Hashable>(_ h: [K: Int], _ r: [K: Int], into stats: inout [Int], at k: Int) {
        var hypCount = 0, match = 0
        for (g, c) in h {
            hypCount += c
            if let rc = r[g] { match += min(c, rc) }
        }
        stats[3 * k] += r.isEmpty ? 0 : hypCount
        stats[3 * k + 1] += r.values.reduce(0, +)
        stats[3 * k + 2] += match
    }

    /// chrF's `_remove_punctuation`: split on whitespace; a word longer than one character loses a
    /// trailing ASCII punctuation mark (else a leading one) as a separate token.
    static func chrfWords(_ s: [Unicode.Scalar]) -> [ArraySlice<Unicode.Scalar>] {
        let puncts = Set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~".unicodeScalars)
        var out: [ArraySlice<Unicode.Scalar>] = []
        for w in pySplit(s) {
            if w.count == 1 {
                out.append(w)
            } else if puncts.contains(w.last!) {
                out.append(w.dropLast()); out.append(w.suffix(1))
            } else if puncts.contains(w.first!) {
                out.append(w.prefix(1)); out.append(w.dropFirst())
            } else {
                out.append(w)
            }
        }
        return out
    }

    static func ngramCounts<T: Hashable>(_ s: [T], _ n: Int) -> [ArraySlice<T>: Int] {
        var c: [ArraySlice<T>: Int] = [:]
        guard s.count >= n else { return c }
        for i in 0...(s.count - n) { c[s[i..<(i + n)], default: 0] += 1 }
        return c
    }
}

/// Maps tokens to integers by exact code points.
struct Interner {
    var table: [[UInt32]: Int] = [:]
    mutating func ids(_ words: [ArraySlice<Unicode.Scalar>]) -> [Int] {
        words.map { w in
            let key = w.map(\.value)
            if let id = table[key] { return id }
            table[key] = table.count
            return table.count - 1
        }
    }
}

/// The corpus metrics `mixmoe score` computes.
public enum MetricName: String, CaseIterable, Sendable {
    case bleu, chrf
    case chrfpp = "chrf++"

    /// Scores `hypotheses` against `references` (same count, checked by the caller); `tokenize`
    /// applies to BLEU only (default: `zh` for a Chinese target, `13a` otherwise).
    public func score(hypotheses: [String], references: [String], tokenize: SacreTokenizer? = nil, targetLang: String? = nil) -> MetricScore {
        switch self {
        case .bleu:
            return Metrics.bleu(
                hypotheses: hypotheses, references: references,
                tokenize: tokenize ?? Evaluation.bleuTokenizer(target: targetLang ?? ""))
        case .chrf: return Metrics.chrf(hypotheses: hypotheses, references: references)
        case .chrfpp: return Metrics.chrf(hypotheses: hypotheses, references: references, wordOrder: 2)
        }
    }
}
