import Foundation

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
