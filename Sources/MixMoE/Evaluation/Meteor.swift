import Foundation

/// METEOR as NLTK's `nltk.translate.meteor_score` computes it (Lavie and Agarwal 2007; NLTK 3.x):
/// words lower-cased, aligned in three stages (exact, Porter stems, WordNet synonyms; each stage
/// matches from the last hypothesis word backwards and takes the reference occurrence furthest
/// right), `F = P R / (alpha P + (1 - alpha) R)`, fragmentation penalty
/// `gamma (chunks / matches)^beta`; alpha 0.9, beta 3, gamma 0.5; the best over references; the
/// corpus score is the mean of segment scores (what Hugging Face `evaluate` reports). Stems and
/// synonyms are English-only: for other target languages only exact matches count.
public struct Meteor: Sendable {
    public let wordnet: WordNet
    public var alpha = 0.9, beta = 3.0, gamma = 0.5
    let stemmer = PorterStemmer()

    public init(wordnet: WordNet) { self.wordnet = wordnet }

    /// Whitespace tokenisation (Python's `str.split()`), as the usual callers of NLTK's function do.
    public static func tokenize(_ s: String) -> [String] {
        pySplit(Array(s.unicodeScalars)).map { String(String.UnicodeScalarView($0)) }
    }

    /// Score of one hypothesis against its references (pre-tokenised words).
    public func segment(hypothesis: [String], references: [[String]]) -> Double {
        references.map { single(hypothesis: hypothesis, reference: $0) }.max() ?? 0
    }

    public func corpus(hypotheses: [String], references: [String]) -> Double {
        guard !hypotheses.isEmpty else { return 0 }
        return zip(hypotheses, references).map { segment(hypothesis: Self.tokenize($0), references: [Self.tokenize($1)]) }
            .reduce(0, +) / Double(hypotheses.count)
    }

    func single(hypothesis: [String], reference: [String]) -> Double {
        var hyp = hypothesis.enumerated().map { ($0.offset, pyLower($0.element)) }
        var ref = reference.enumerated().map { ($0.offset, pyLower($0.element)) }
        let exact = Self.match(&hyp, &ref, key: { $0 })
        let stem = Self.match(&hyp, &ref, key: stemmer.stem)
        let syn = synonymMatch(&hyp, &ref)
        let matches = (exact + stem + syn).sorted { $0.0 < $1.0 }
        let m = Double(matches.count)
        guard !hypothesis.isEmpty, !reference.isEmpty, m > 0 else { return 0 }
        let p = m / Double(hypothesis.count), r = m / Double(reference.count)
        let fmean = (p * r) / (alpha * p + (1 - alpha) * r)
        let frag = Double(Self.chunks(matches)) / m
        return (1 - gamma * pow(frag, beta)) * fmean
    }

    /// One alignment stage: from the last unmatched hypothesis word backwards, match the rightmost
    /// unmatched reference word with the same key; matched words leave both lists. NLTK's quirk:
    /// the words left over are the keys (after the stem stage, the synonym stage sees stems).
    static func match(_ hyp: inout [(Int, String)], _ ref: inout [(Int, String)], key: (String) -> String) -> [(Int, Int)] {
        let hk = hyp.map { key($0.1) }, rk = ref.map { key($0.1) }
        hyp = zip(hyp, hk).map { ($0.0.0, $0.1) }
        ref = zip(ref, rk).map { ($0.0.0, $0.1) }
        var positions: [String: [Int]] = [:]
        for (j, w) in rk.enumerated() { positions[w, default: []].append(j) }
        var out: [(Int, Int)] = [], mh = Set<Int>(), mr = Set<Int>()
        for i in stride(from: hyp.count - 1, through: 0, by: -1) {
            if var p = positions[hk[i]], let j = p.popLast() {
                positions[hk[i]] = p
                mh.insert(i); mr.insert(j)
                out.append((hyp[i].0, ref[j].0))
            }
        }
        hyp = hyp.enumerated().filter { !mh.contains($0.offset) }.map(\.element)
        ref = ref.enumerated().filter { !mr.contains($0.offset) }.map(\.element)
        return out
    }

    /// The synonym stage: a hypothesis word matches the rightmost unmatched reference word that is
    /// one of its WordNet lemma names (or itself).
    func synonymMatch(_ hyp: inout [(Int, String)], _ ref: inout [(Int, String)]) -> [(Int, Int)] {
        var positions: [String: [Int]] = [:]
        for (j, w) in ref.enumerated() { positions[w.1, default: []].append(j) }
        var out: [(Int, Int)] = [], mh = Set<Int>(), mr = Set<Int>()
        for i in stride(from: hyp.count - 1, through: 0, by: -1) {
            var syns = wordnet.synonyms(hyp[i].1)
            syns.insert(hyp[i].1)
            var bestJ = -1, bestWord: String? = nil
            for s in syns { if let p = positions[s], let last = p.last, last > bestJ { bestJ = last; bestWord = s } }
            if let w = bestWord {
                positions[w]!.removeLast()
                mh.insert(i); mr.insert(bestJ)
                out.append((hyp[i].0, ref[bestJ].0))
            }
        }
        hyp = hyp.enumerated().filter { !mh.contains($0.offset) }.map(\.element)
        ref = ref.enumerated().filter { !mr.contains($0.offset) }.map(\.element)
        return out
    }

    /// Fewest chunks of matches adjacent in both sentences (matches sorted by hypothesis position).
    static func chunks(_ m: [(Int, Int)]) -> Int {
        var c = 1
        for i in 0..<max(0, m.count - 1) where !(m[i + 1].0 == m[i].0 + 1 && m[i + 1].1 == m[i].1 + 1) { c += 1 }
        return c
    }
}

/// Python's `str.lower()`.
func pyLower(_ s: String) -> String { s.lowercased() }
