import Foundation

/// A corpus-level score with a sacreBLEU-style signature.
public struct MetricScore: Sendable, Encodable {
    public var name: String
    public var score: Double
    public var signature: String
    public var verbose: String
    public let compatibleWith = "sacrebleu 2.x"

    enum CodingKeys: String, CodingKey {
        case name, score, signature
        case verbose = "verbose_score"
        case compatibleWith = "compatible_with"
    }

    public init(name: String, score: Double, signature: String, verbose: String) {
        (self.name, self.score, self.signature, self.verbose) = (name, score, signature, verbose)
    }
}

/// Scores as sacreBLEU 2.x does (one reference per segment, case-sensitive).
public enum Metrics {
    /// Corpus BLEU: n = 1...4, clipped counts, brevity penalty, exponential smoothing ('exp'),
    /// no effective order (sacreBLEU's corpus defaults), from the summed segment statistics.
    public static func bleu(hypotheses: [String], references: [String], tokenize: SacreTokenizer = .t13a) -> MetricScore {
        precondition(hypotheses.count == references.count, "hypotheses and references differ in count")
        var stats = [Double](repeating: 0, count: 10)
        for (h, r) in zip(hypotheses, references) {
            for (k, v) in bleuStats(h, r, tokenize: tokenize).enumerated() { stats[k] += v }
        }
        let (score, prec, bp) = bleuScore(stats)
        let sysLen = Int(stats[0]), refLen = Int(stats[1])
        let verbose = String(
            format: "%.2f %@ (BP = %.3f ratio = %.3f hyp_len = %d ref_len = %d)", score,
            prec.map { String(format: "%.1f", $0) }.joined(separator: "/"), bp,
            refLen > 0 ? Double(sysLen) / Double(refLen) : 0, sysLen, refLen)
        return MetricScore(
            name: "BLEU", score: score,
            signature: "nrefs:1|case:mixed|eff:no|tok:\(tokenize.rawValue)|smooth:exp|version:mixmoe", verbose: verbose)
    }

    /// sacreBLEU's BLEU segment statistics: `[hyp length, ref length, matches 1-4, n-grams 1-4]`.
    public static func bleuStats(_ h: String, _ r: String, tokenize: SacreTokenizer) -> [Double] {
        var interner = Interner()
        let ht = interner.ids(pySplit(tokenize(pyRstrip(Array(h.unicodeScalars)))))
        let rt = interner.ids(pySplit(tokenize(pyRstrip(Array(r.unicodeScalars)))))
        var st = [Double](repeating: 0, count: 10)
        st[0] = Double(ht.count); st[1] = Double(rt.count)
        for n in 1...4 {
            let hc = ngramCounts(ht, n), rc = ngramCounts(rt, n)
            for (g, c) in hc {
                st[5 + n] += Double(c)
                if let rcount = rc[g] { st[1 + n] += Double(min(c, rcount)) }
            }
        }
        return st
    }

    /// BLEU from summed statistics: `(score, precisions, brevity penalty)`. With `float32`, the
    /// precisions are computed in single precision, as sacreBLEU's significance tests compute
    /// them from float32 statistic arrays.
    public static func bleuScore(_ st: [Double], float32: Bool = false) -> (Double, [Double], Double) {
        let sysLen = Int(st[0]), refLen = Int(st[1])
        var bp = 1.0
        if sysLen < refLen { bp = sysLen > 0 ? exp(1 - Double(refLen) / Double(sysLen)) : 0 }
        var prec = [Double](repeating: 0, count: 4)
        guard (2..<6).contains(where: { st[$0] > 0 }) else { return (0, prec, bp) }
        var smooth = 1.0
        for n in 0..<4 {
            let correct = st[2 + n], total = st[6 + n]
            if total == 0 { break }
            if correct == 0 {
                smooth *= 2
                prec[n] = float32 ? Double(Float(100) / (Float(smooth) * Float(total))) : 100 / (smooth * total)
            } else {
                prec[n] = float32 ? Double(Float(100) * Float(correct) / Float(total)) : 100 * correct / total
            }
        }
        return (bp * exp(prec.map { $0 == 0 ? -9_999_999_999 : log($0) }.reduce(0, +) / 4), prec, bp)
    }

    /// chrF (wordOrder 0) or chrF++ (wordOrder 2): character n-grams 1...6 of the text without
    /// whitespace, word n-grams after chrF's punctuation split, statistics summed over the corpus,
    /// precision and recall averaged over the effective orders, F-beta with beta = 2.
    public static func chrf(
        hypotheses: [String], references: [String], wordOrder: Int = 0,
        charOrder: Int = 6, beta: Double = 2
    ) -> MetricScore {
        precondition(hypotheses.count == references.count, "hypotheses and references differ in count")
        var stats = [Double](repeating: 0, count: 3 * (charOrder + wordOrder))
        for (h, r) in zip(hypotheses, references) {
            for (k, v) in chrfStats(h, r, wordOrder: wordOrder, charOrder: charOrder).enumerated() { stats[k] += v }
        }
        let score = chrfScore(stats, beta: beta)
        let b = Int(beta)
        let name = "chrF\(b)" + (wordOrder > 0 ? String(repeating: "+", count: wordOrder == 2 ? 2 : 1) : "")
        return MetricScore(
            name: name, score: score,
            signature: "nrefs:1|case:mixed|eff:yes|nc:\(charOrder)|nw:\(wordOrder)|space:no|version:mixmoe",
            verbose: String(format: "%.2f", score))
    }

    /// sacreBLEU's chrF segment statistics: `[hyp, ref, match]` per character order, then per word order.
    public static func chrfStats(_ h: String, _ r: String, wordOrder: Int, charOrder: Int = 6) -> [Double] {
        var stats = [Int](repeating: 0, count: 3 * (charOrder + wordOrder))
        let hs = Array(h.unicodeScalars), rs = Array(r.unicodeScalars)
        let hc = hs.filter { !pyIsSpace($0) }.map(\.value), rc = rs.filter { !pyIsSpace($0) }.map(\.value)
        var k = 0
        for n in 1...charOrder {
            add(ngramCounts(hc, n), ngramCounts(rc, n), into: &stats, at: k); k += 1
        }
        if wordOrder > 0 {
            var interner = Interner()
            let hi = interner.ids(chrfWords(hs)), ri = interner.ids(chrfWords(rs))
            for n in 1...wordOrder { add(ngramCounts(hi, n), ngramCounts(ri, n), into: &stats, at: k); k += 1 }
        }
        return stats.map(Double.init)
    }

    /// chrF from summed statistics (in single precision with `float32`, as sacreBLEU's
    /// significance tests compute it).
    public static func chrfScore(_ stats: [Double], beta: Double = 2, float32: Bool = false) -> Double {
        if float32 {
            let st = stats.map(Float.init), factor = Float(beta * beta)
            var avgP: Float = 0, avgR: Float = 0, eff = 0
            for i in 0..<(st.count / 3) where st[3 * i] > 0 && st[3 * i + 1] > 0 {
                avgP += st[3 * i + 2] / st[3 * i]; avgR += st[3 * i + 2] / st[3 * i + 1]; eff += 1
            }
            guard eff > 0 else { return 0 }
            avgP /= Float(eff); avgR /= Float(eff)
            guard avgP + avgR != 0 else { return 0 }
            var score = (1 + factor) * avgP * avgR
            score /= factor * avgP + avgR
            return Double(100 * score)
        }
        let factor = beta * beta
        var avgP = 0.0, avgR = 0.0, eff = 0
        for i in 0..<(stats.count / 3) where stats[3 * i] > 0 && stats[3 * i + 1] > 0 {
            avgP += stats[3 * i + 2] / stats[3 * i]; avgR += stats[3 * i + 2] / stats[3 * i + 1]; eff += 1
        }
        guard eff > 0 else { return 0 }
        avgP /= Double(eff); avgR /= Double(eff)
        guard avgP + avgR > 0 else { return 0 }
        var score = (1 + factor) * avgP * avgR  // sacreBLEU's order of operations
        score /= factor * avgP + avgR
        return 100 * score
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
    case ter
    /// METEOR as NLTK computes it, the mean of segment scores in [0, 1] (needs WordNet)
    case meteor

    /// Scores `hypotheses` against `references` (same count, checked by the caller); `tokenize`
    /// applies to BLEU only (default: `zh` for a Chinese target, `13a` otherwise).
    public func score(
        hypotheses: [String], references: [String], tokenize: SacreTokenizer? = nil, targetLang: String? = nil,
        ter: TEROptions = TEROptions()
    ) -> MetricScore {
        CorpusMetric(self, tokenize: tokenize ?? Evaluation.bleuTokenizer(target: targetLang ?? ""), ter: ter)
            .score(hypotheses: hypotheses, references: references)
    }
}

/// A metric with its options, as sufficient statistics per segment and a score from their sum:
/// the form sacreBLEU's significance tests resample.
public struct CorpusMetric: Sendable {
    public var name: MetricName
    public var tokenize: SacreTokenizer
    public var ter: TEROptions
    /// METEOR's synonyms (nil: METEOR is not available; `stats` then gives 0).
    public var meteor: Meteor?

    public init(_ name: MetricName, tokenize: SacreTokenizer = .t13a, ter: TEROptions = TEROptions(), meteor: Meteor? = nil) {
        self.name = name; self.tokenize = tokenize; self.ter = ter; self.meteor = meteor
    }

    public func stats(_ h: String, _ r: String) -> [Double] {
        switch name {
        case .bleu: return Metrics.bleuStats(h, r, tokenize: tokenize)
        case .chrf: return Metrics.chrfStats(h, r, wordOrder: 0)
        case .chrfpp: return Metrics.chrfStats(h, r, wordOrder: 2)
        case .ter:
            let (e, n) = TER.editRate(hypothesis: TER.tokenize(h, ter), reference: TER.tokenize(r, ter))
            return [Double(e), Double(n)]
        case .meteor:  // [segment score, 1]: the corpus score is their mean
            return [meteor?.segment(hypothesis: Meteor.tokenize(h), references: [Meteor.tokenize(r)]) ?? 0, 1]
        }
    }

    /// The score of summed statistics; `float32` as sacreBLEU computes bootstrap resamples.
    public func score(_ st: [Double], float32: Bool = false) -> Double {
        switch name {
        case .bleu: return Metrics.bleuScore(st, float32: float32).0
        case .chrf, .chrfpp: return Metrics.chrfScore(st, float32: float32)
        case .ter:
            if st[1] > 0 { return float32 ? Double(100 * (Float(st[0]) / Float(st[1]))) : 100 * (st[0] / st[1]) }
            return st[0] > 0 ? 100 : 0  // empty references: 1.0 with a non-empty hypothesis
        case .meteor: return st[1] > 0 ? st[0] / st[1] : 0
        }
    }

    public func score(hypotheses: [String], references: [String]) -> MetricScore {
        switch name {
        case .bleu: return Metrics.bleu(hypotheses: hypotheses, references: references, tokenize: tokenize)
        case .chrf: return Metrics.chrf(hypotheses: hypotheses, references: references)
        case .chrfpp: return Metrics.chrf(hypotheses: hypotheses, references: references, wordOrder: 2)
        case .ter, .meteor:
            var st = [0.0, 0.0]
            for (h, r) in zip(hypotheses, references) { let x = stats(h, r); st[0] += x[0]; st[1] += x[1] }
            let s = score(st)
            let signature =
                name == .ter
                ? ter.signature
                : "nrefs:1|tok:split|lc:yes|stem:porter|syn:wordnet-3.0|alpha:0.9|beta:3|gamma:0.5|avg:segments|version:mixmoe-nltk"
            return MetricScore(
                name: name == .ter ? "TER" : "METEOR", score: s, signature: signature,
                verbose: String(format: name == .ter ? "%.2f" : "%.4f", s))
        }
    }
}
