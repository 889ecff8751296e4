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

/// WordNet 3.0 read from its database files (Debian's `wordnet-base`: `/usr/share/wordnet`), as
/// NLTK's `WordNetCorpusReader` reads them, for what METEOR needs: `synsets(word)` over nouns,
/// verbs, adjectives and adverbs after NLTK's `morphy` (exception lists, then one round of
/// suffix rules), and the lemma names of those synsets.
public final class WordNet: @unchecked Sendable {
    public static let defaultDirectory = URL(fileURLWithPath: "/usr/share/wordnet")
    static let posFiles: [(String, String)] = [("n", "noun"), ("v", "verb"), ("a", "adj"), ("r", "adv")]
    static let substitutions: [String: [(String, String)]] = [
        "n": [("s", ""), ("ses", "s"), ("ves", "f"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"), ("men", "man"), ("ies", "y")],
        "v": [("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"), ("ing", "")],
        "a": [("er", ""), ("est", ""), ("er", "e"), ("est", "e")], "r": [],
    ]

    var indexFiles: [String: Data] = [:]  // pos -> index file (memory-mapped, sorted by lemma)
    private var indexCache: [String: [Int]?] = [:]  // "pos lemma" -> synset offsets
    var exceptions: [String: [String: [String]]] = [:]  // pos -> inflected form -> base forms
    var data: [String: Data] = [:]  // pos -> data file (memory-mapped)
    private var cache: [String: Set<String>] = [:]
    private let lock = NSLock()

    /// Loads the database from `directory`; a clear error names the missing file and the package.
    public init(directory: URL = WordNet.defaultDirectory) throws {
        for (pos, suffix) in Self.posFiles {
            func read(_ name: String) throws -> Data {
                let url = directory.appendingPathComponent(name)
                guard let d = try? Data(contentsOf: url, options: .alwaysMapped) else {
                    throw DataError.missingFile(url.path + " (METEOR needs WordNet 3.0: apt-get install wordnet-base)")
                }
                return d
            }
            indexFiles[pos] = try read("index.\(suffix)")
            var exc: [String: [String]] = [:]
            Self.forEachLine(try read("\(suffix).exc")) { t in if let f = t.first { exc[f] = Array(t.dropFirst()) } }
            exceptions[pos] = exc
            data[pos] = try read("data.\(suffix)")
        }
    }

    /// Calls `body` with the space-separated fields of every line that does not start with a space.
    static func forEachLine(_ d: Data, _ body: ([String]) -> Void) {
        d.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let b = raw.bindMemory(to: UInt8.self)
            var i = 0
            while i < b.count {
                var end = i
                while end < b.count && b[end] != 0x0A { end += 1 }
                if end > i && b[i] != 0x20 {
                    var fields: [String] = [], start = i
                    for k in i...end where k == end || b[k] == 0x20 {
                        if k > start { fields.append(String(decoding: UnsafeBufferPointer(rebasing: b[start..<k]), as: UTF8.self)) }
                        start = k + 1
                    }
                    body(fields)
                }
                i = end + 1
            }
        }
    }

    /// Synset offsets of `lemma` in `index.POS` (`lemma pos synset_cnt p_cnt [ptr...] sense_cnt
    /// tagsense_cnt offset...`), found by binary search: the index files are sorted by lemma in
    /// byte order (WordNet's own library searches them so), after license lines that start with a
    /// space. The same lines NLTK loads into its map, without parsing 150,000 lines up front.
    func offsets(_ lemma: String, _ pos: String) -> [Int]? {
        let key = pos + " " + lemma
        if let c = indexCache[key] { return c }
        let found: [Int]? = indexFiles[pos].flatMap { file in
            file.withUnsafeBytes { raw -> [Int]? in
                let b = raw.bindMemory(to: UInt8.self), target = Array(lemma.utf8)
                func lineStart(_ i: Int) -> Int { var k = i; while k > 0 && b[k - 1] != 0x0A { k -= 1 }; return k }
                func lineEnd(_ i: Int) -> Int { var k = i; while k < b.count && b[k] != 0x0A { k += 1 }; return k }
                // compare the first field of the line at `start` with the target
                func compare(_ start: Int) -> Int {
                    if b[start] == 0x20 { return -1 }  // license lines sort before every lemma
                    var k = 0
                    while true {
                        let c = start + k < b.count && b[start + k] != 0x20 && b[start + k] != 0x0A ? Int(b[start + k]) : -1
                        let t = k < target.count ? Int(target[k]) : -1
                        if c != t { return c < t ? -1 : 1 }
                        if c == -1 { return 0 }
                        k += 1
                    }
                }
                var lo = 0, hi = b.count
                while lo < hi {
                    let start = lineStart((lo + hi) / 2), end = lineEnd(start)
                    switch compare(start) {
                    case 0:
                        let t = String(decoding: UnsafeBufferPointer(rebasing: b[start..<end]), as: UTF8.self).split(separator: " ")
                        guard t.count >= 4, let n = Int(t[2]), let p = Int(t[3]), t.count >= 6 + p + n else { return nil }
                        return t[(6 + p)..<(6 + p + n)].compactMap { Int($0) }
                    case ..<0: lo = end + 1
                    default: hi = start
                    }
                }
                return nil
            }
        }
        indexCache[key] = found
        return found
    }

    /// NLTK's `_morphy(form, pos)`: the exception list's base forms, else one round of suffix
    /// rules; the form itself and those candidates that are lemmas of this part of speech.
    func morphy(_ form: String, _ pos: String) -> [String] {
        let forms: [String]
        if let e = exceptions[pos]?[form] {
            forms = e
        } else {
            forms = (Self.substitutions[pos] ?? []).compactMap { old, new in form.hasSuffix(old) ? String(form.dropLast(old.count)) + new : nil }
        }
        var seen = Set<String>(), out: [String] = []
        for f in [form] + forms where offsets(f, pos) != nil && !seen.contains(f) { seen.insert(f); out.append(f) }
        return out
    }

    /// Lemma names of every synset of `word` (NLTK's `synsets(word)` then `lemma.name()`).
    public func synonyms(_ word: String) -> Set<String> {
        let w = pyLower(word)
        lock.lock(); defer { lock.unlock() }
        if let c = cache[w] { return c }
        var out = Set<String>()
        for (pos, _) in Self.posFiles {
            for form in morphy(w, pos) {
                for off in offsets(form, pos) ?? [] { out.formUnion(lemmaNames(pos, off)) }
            }
        }
        // NLTK's METEOR keeps names without "_" (single words)
        out = out.filter { !$0.contains("_") }
        cache[w] = out
        return out
    }

    /// Words of the synset at byte `offset` of `data.POS`: `offset lex ss_type w_cnt(hex) word lex_id ...`,
    /// a trailing syntactic marker such as `(a)` removed.
    func lemmaNames(_ pos: String, _ offset: Int) -> [String] {
        guard let bytes = data[pos], offset < bytes.count else { return [] }
        let line: String = bytes.withUnsafeBytes { raw in
            let b = raw.bindMemory(to: UInt8.self)
            var end = offset
            while end < b.count && b[end] != 0x0A { end += 1 }
            return String(decoding: UnsafeBufferPointer(rebasing: b[offset..<end]), as: UTF8.self)
        }
        let t = line.split(separator: " ")
        guard t.count > 4, let n = Int(t[3], radix: 16) else { return [] }
        return (0..<n).compactMap { k -> String? in
            guard 4 + 2 * k < t.count else { return nil }
            var name = String(t[4 + 2 * k])
            if name.hasSuffix(")"), let open = name.lastIndex(of: "("), !name[name.index(after: open)...].dropLast().contains("(") {
                name = String(name[..<open])
            }
            return name
        }
    }
}

/// NLTK's `PorterStemmer` in its default mode (`NLTK_EXTENSIONS`): Porter's algorithm with NLTK's
/// irregular forms and extra rules, ported rule for rule from `nltk/stem/porter.py`.
struct PorterStemmer: Sendable {
    static let pool: [String: String] = {
        let irregular: [(String, [String])] = [
            ("sky", ["sky", "skies"]), ("die", ["dying"]), ("lie", ["lying"]), ("tie", ["tying"]), ("news", ["news"]),
            ("inning", ["innings", "inning"]), ("outing", ["outings", "outing"]), ("canning", ["cannings", "canning"]),
            ("howe", ["howe"]), ("proceed", ["proceed"]), ("exceed", ["exceed"]), ("succeed", ["succeed"]),
        ]
        var p: [String: String] = [:]
        for (k, vs) in irregular { for v in vs { p[v] = k } }
        return p
    }()
    typealias W = [Unicode.Scalar]
    static let vowels: Set<Unicode.Scalar> = ["a", "e", "i", "o", "u"]

    func isConsonant(_ w: W, _ i0: Int) -> Bool {
        var i = i0
        if Self.vowels.contains(w[i]) { return false }
        if w[i] == "y" {
            var negate = false
            while i > 0 && w[i] == "y" { negate.toggle(); i -= 1 }
            return (!Self.vowels.contains(w[i])) != negate
        }
        return true
    }

    func consonantFlags(_ w: W) -> [Bool] {
        var f: [Bool] = []
        for (i, c) in w.enumerated() {
            if Self.vowels.contains(c) { f.append(false) } else if c == "y" { f.append(i == 0 ? true : !f[i - 1]) } else { f.append(true) }
        }
        return f
    }

    /// m: the number of vowel-consonant sequences.
    func measure(_ w: W) -> Int {
        let f = consonantFlags(w)
        var m = 0
        for i in 0..<max(0, f.count - 1) where !f[i] && f[i + 1] { m += 1 }
        return m
    }
    func containsVowel(_ w: W) -> Bool { consonantFlags(w).contains(false) }
    func endsDoubleConsonant(_ w: W) -> Bool { w.count >= 2 && w[w.count - 1] == w[w.count - 2] && isConsonant(w, w.count - 1) }
    func endsCVC(_ w: W) -> Bool {
        let n = w.count
        return (n >= 3 && isConsonant(w, n - 3) && !isConsonant(w, n - 2) && isConsonant(w, n - 1) && !["w", "x", "y"].contains(w[n - 1]))
            || (n == 2 && !isConsonant(w, 0) && isConsonant(w, 1))
    }
    func ends(_ w: W, _ s: String) -> Bool { let x = Array(s.unicodeScalars); return w.count >= x.count && Array(w.suffix(x.count)) == x }
    func replace(_ w: W, _ s: String, _ r: String) -> W { Array(w.dropLast(s.unicodeScalars.count)) + Array(r.unicodeScalars) }

    typealias Rule = (suffix: String, replacement: String, condition: ((W) -> Bool)?)

    func applyRules(_ w: W, _ rules: [Rule]) -> W {
        for (suffix, replacement, condition) in rules {
            if suffix == "*d" && endsDoubleConsonant(w) {
                let stem = Array(w.dropLast(2))
                return condition == nil || condition!(stem) ? stem + Array(replacement.unicodeScalars) : w
            }
            if ends(w, suffix) {
                let stem = replace(w, suffix, "")
                return condition == nil || condition!(stem) ? stem + Array(replacement.unicodeScalars) : w
            }
        }
        return w
    }

    func step1a(_ w: W) -> W {
        if ends(w, "ies") && w.count == 4 { return replace(w, "ies", "ie") }
        return applyRules(w, [("sses", "ss", nil), ("ies", "i", nil), ("ss", "ss", nil), ("s", "", nil)])
    }

    func step1b(_ w: W) -> W {
        if ends(w, "ied") { return replace(w, "ied", w.count == 4 ? "ie" : "i") }
        if ends(w, "eed") {
            let stem = replace(w, "eed", "")
            return measure(stem) > 0 ? stem + Array("ee".unicodeScalars) : w
        }
        var inter: W? = nil
        for suffix in ["ed", "ing"] where ends(w, suffix) {
            let s = replace(w, suffix, "")
            if containsVowel(s) { inter = s; break }
        }
        guard let s = inter else { return w }
        let last = s.last.map { String($0) } ?? ""
        return applyRules(
            s,
            [
                ("at", "ate", nil), ("bl", "ble", nil), ("iz", "ize", nil),
                ("*d", last, { _ in !["l", "s", "z"].contains(last) }),
                ("", "e", { self.measure($0) == 1 && self.endsCVC($0) }),
            ])
    }

    func step1c(_ w: W) -> W { applyRules(w, [("y", "i", { $0.count > 1 && self.isConsonant($0, $0.count - 1) })]) }

    func step2(_ w: W) -> W {
        if ends(w, "alli") && measure(replace(w, "alli", "")) > 0 { return step2(replace(w, "alli", "al")) }
        let pos: (W) -> Bool = { self.measure($0) > 0 }
        var rules: [Rule] = [
            ("ational", "ate", pos), ("tional", "tion", pos), ("enci", "ence", pos), ("anci", "ance", pos), ("izer", "ize", pos),
            ("bli", "ble", pos), ("alli", "al", pos), ("entli", "ent", pos), ("eli", "e", pos), ("ousli", "ous", pos),
            ("ization", "ize", pos), ("ation", "ate", pos), ("ator", "ate", pos), ("alism", "al", pos), ("iveness", "ive", pos),
            ("fulness", "ful", pos), ("ousness", "ous", pos), ("aliti", "al", pos), ("iviti", "ive", pos), ("biliti", "ble", pos),
        ]
        rules.append(("fulli", "ful", pos))
        rules.append(("logi", "log", { _ in self.measure(Array(w.dropLast(3))) > 0 }))
        return applyRules(w, rules)
    }

    func step3(_ w: W) -> W {
        let pos: (W) -> Bool = { self.measure($0) > 0 }
        return applyRules(
            w,
            [
                ("icate", "ic", pos), ("ative", "", pos), ("alize", "al", pos), ("iciti", "ic", pos), ("ical", "ic", pos),
                ("ful", "", pos), ("ness", "", pos),
            ])
    }

    func step4(_ w: W) -> W {
        let gt1: (W) -> Bool = { self.measure($0) > 1 }
        return applyRules(
            w,
            [
                ("al", "", gt1), ("ance", "", gt1), ("ence", "", gt1), ("er", "", gt1), ("ic", "", gt1), ("able", "", gt1), ("ible", "", gt1),
                ("ant", "", gt1), ("ement", "", gt1), ("ment", "", gt1), ("ent", "", gt1),
                ("ion", "", { self.measure($0) > 1 && ["s", "t"].contains($0.last ?? " ") }),
                ("ou", "", gt1), ("ism", "", gt1), ("ate", "", gt1), ("iti", "", gt1), ("ous", "", gt1), ("ive", "", gt1), ("ize", "", gt1),
            ])
    }

    func step5a(_ w: W) -> W {
        guard ends(w, "e") else { return w }
        let stem = replace(w, "e", "")
        if measure(stem) > 1 { return stem }
        if measure(stem) == 1 && !endsCVC(stem) { return stem }
        return w
    }

    func step5b(_ w: W) -> W { applyRules(w, [("ll", "l", { _ in self.measure(Array(w.dropLast())) > 1 })]) }

    func stem(_ word: String) -> String {
        let lower = pyLower(word)
        if let p = Self.pool[lower] { return p }
        if word.unicodeScalars.count <= 2 { return lower }
        var w = Array(lower.unicodeScalars)
        w = step1a(w); w = step1b(w); w = step1c(w); w = step2(w); w = step3(w); w = step4(w); w = step5a(w); w = step5b(w)
        return String(String.UnicodeScalarView(w))
    }
}
