import Foundation

/// A Hugging Face byte-level BPE tokenizer (`tokenizer.json` of GPT-2, Llama 3, Qwen2 and those
/// mixmoe trains): normalizer (none or NFC), added tokens matched before pre-tokenisation,
/// Split + ByteLevel pre-tokenizers, BPE merges by rank, the post-processor's BOS/EOS, and the
/// ByteLevel decoder. Unsupported components are errors naming them.
public final class BPETokenizer: @unchecked Sendable {
    public struct AddedToken: Sendable, Equatable {
        public var id: Int32
        public var content: String
        public var special: Bool
        public var lstrip = false
        public var rstrip = false
        public var singleWord = false
    }

    public let vocab: [String: Int32]
    public let idToToken: [String]
    public let addedTokens: [AddedToken]
    public let pattern: SplitPattern
    public let addPrefixSpace: Bool
    public let nfc: Bool
    public let ignoreMerges: Bool
    /// Token ids the post-processor puts before / after a single sequence.
    public let prefixIds: [Int32]
    public let suffixIds: [Int32]
    /// (left id, right id) -> (rank, merged id)
    let merges: [UInt64: (rank: Int32, id: Int32)]
    let byteIds: [Int32]  // token id of each byte's byte-level character
    let addedById: [Int32: String]
    let addedScalars: [[Unicode.Scalar]]  // each added token's content, precomputed
    let addedFirstScalars: Set<Unicode.Scalar>  // quick filter: where an added token may start
    /// Word cache keyed by UTF-8 bytes: Swift `String` equality is canonical equivalence, which
    /// would conflate "é" and "e\u{301}" (different ids).
    private var cache: [[UInt8]: [Int32]] = [:]
    private let cacheLock = NSLock()

    public var vocabSize: Int { idToToken.count }
    /// The JSON this tokenizer was parsed from.
    public internal(set) var sourceJSON = Data()
    public var mergeCount: Int { merges.count }

    public func id(_ token: String) -> Int32? { vocab[token] ?? addedTokens.first { $0.content == token }?.id }

    // MARK: encode

    /// Token ids of `text`; `addSpecialTokens` applies the post-processor's template (BOS/EOS).
    public func encode(_ text: String, addSpecialTokens: Bool = false) -> [Int32] {
        var out: [Int32] = addSpecialTokens ? prefixIds : []
        for segment in splitOnAddedTokens(text) {
            switch segment {
            case .added(let id): out.append(id)
            case .text(let t): encodeOrdinary(t, into: &out)
            }
        }
        if addSpecialTokens { out += suffixIds }
        return out
    }

    enum Segment { case text(String), added(Int32) }

    /// Splits on added tokens, leftmost-longest (HF's AddedVocabulary), honouring lstrip/rstrip
    /// (the token swallows adjacent whitespace) and single_word.
    func splitOnAddedTokens(_ text: String) -> [Segment] {
        guard !addedTokens.isEmpty, text.unicodeScalars.contains(where: { addedFirstScalars.contains($0) }) else {
            return [.text(text)]
        }
        let s = Array(text.unicodeScalars)
        var out: [Segment] = []
        var start = 0, i = 0
        func flush(_ end: Int) {
            if end > start { out.append(.text(String(String.UnicodeScalarView(s[start..<end])))) }
        }
        while i < s.count {
            guard addedFirstScalars.contains(s[i]) else { i += 1; continue }
            var best: (AddedToken, Int)? = nil
            for (t, c) in zip(addedTokens, addedScalars) {
                guard !c.isEmpty, i + c.count <= s.count, best == nil || c.count > best!.1 else { continue }
                if Array(s[i..<(i + c.count)]) == c {
                    if t.singleWord {
                        let before = i == 0 || !isWordChar(s[i - 1])
                        let after = i + c.count == s.count || !isWordChar(s[i + c.count])
                        if !(before && after) { continue }
                    }
                    best = (t, c.count)
                }
            }
            guard let (tok, len) = best else { i += 1; continue }
            var lo = i, hi = i + len
            if tok.lstrip { while lo > start, isSpace(s[lo - 1]) { lo -= 1 } }
            if tok.rstrip { while hi < s.count, isSpace(s[hi]) { hi += 1 } }
            flush(lo)
            out.append(.added(tok.id))
            start = hi; i = hi
        }
        flush(s.count)
        return out
    }

    func isWordChar(_ c: Unicode.Scalar) -> Bool { isLetter(c) || isNumber(c) || c == "_" }

    func encodeOrdinary(_ raw: String, into out: inout [Int32]) {
        var text = nfc ? raw.precomposedStringWithCanonicalMapping : raw
        if addPrefixSpace, let f = text.unicodeScalars.first, f != " " { text = " " + text }
        let utf8 = Array(text.utf8)
        var scalars: [Unicode.Scalar] = []
        var offsets: [Int] = []  // byte offset of each scalar, plus the end
        scalars.reserveCapacity(utf8.count)
        offsets.reserveCapacity(utf8.count + 1)
        var off = 0
        for sc in text.unicodeScalars {
            scalars.append(sc)
            offsets.append(off)
            off += UTF8.width(sc)
        }
        offsets.append(off)
        cacheLock.lock()
        defer { cacheLock.unlock() }
        for r in pattern.split(scalars) {
            let word = Array(utf8[offsets[r.lowerBound]..<offsets[r.upperBound]])
            if let hit = cache[word] { out += hit; continue }
            let ids = bpe(word)
            if cache.count > 200_000 { cache.removeAll(keepingCapacity: true) }
            cache[word] = ids
            out += ids
        }
    }

    /// BPE on one pre-token: start from its bytes' ids, repeatedly merge the adjacent pair of lowest
    /// rank (leftmost on ties), as the HF BPE model's `merge_all` does.
    func bpe(_ word: [UInt8]) -> [Int32] {
        if ignoreMerges, let whole = vocab[ByteLevel.encode(word)] { return [whole] }
        var sym = word.map { byteIds[Int($0)] }
        while sym.count > 1 {
            var bestRank = Int32.max, bestAt = -1, bestId: Int32 = 0
            for k in 0..<(sym.count - 1) {
                if let m = merges[UInt64(UInt32(bitPattern: sym[k])) << 32 | UInt64(UInt32(bitPattern: sym[k + 1]))],
                    m.rank < bestRank
                {
                    bestRank = m.rank; bestAt = k; bestId = m.id
                }
            }
            if bestAt < 0 { break }
            sym[bestAt] = bestId
            sym.remove(at: bestAt + 1)
        }
        return sym
    }

    // MARK: decode

    /// Text of `ids` (ByteLevel decoder; added tokens give their content; invalid UTF-8 becomes U+FFFD,
    /// as HF's lossy decode does).
    public func decode(_ ids: [Int32], skipSpecialTokens: Bool = false) -> String {
        var bytes: [UInt8] = []
        for id in ids { bytes += self.bytes(of: id, skipSpecialTokens: skipSpecialTokens) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The bytes one id stands for (an added token's content; nothing for an unknown id, or for a
    /// special token when `skipSpecialTokens`). ``decode(_:skipSpecialTokens:)`` is their UTF-8 text.
    public func bytes(of id: Int32, skipSpecialTokens: Bool = false) -> [UInt8] {
        if let added = addedById[id] {
            if skipSpecialTokens, addedTokens.first(where: { $0.id == id })?.special == true { return [] }
            return Array(added.utf8)
        }
        guard id >= 0, Int(id) < idToToken.count else { return [] }
        return ByteLevel.decode(idToToken[Int(id)])
    }

    // MARK: init

    init(
        vocab: [String: Int32], mergeList: [(String, String)], added: [AddedToken], pattern: SplitPattern,
        addPrefixSpace: Bool, nfc: Bool, ignoreMerges: Bool, prefixIds: [Int32], suffixIds: [Int32], file: String
    ) throws {
        self.vocab = vocab
        var maxId: Int32 = -1
        for (_, id) in vocab { maxId = max(maxId, id) }
        for t in added { maxId = max(maxId, t.id) }
        // ids index a table: they must be (nearly) dense, as in every real tokenizer.json
        guard Int(maxId) < 2 * (vocab.count + added.count) + 1024 else {
            throw TokenizerError.invalid(
                file: file, field: "model.vocab",
                expected: "ids below \(2 * (vocab.count + added.count) + 1024) (the largest id is \(maxId) for \(vocab.count + added.count) tokens)")
        }
        var inv = [String](repeating: "", count: Int(maxId) + 1)
        for (t, id) in vocab { inv[Int(id)] = t }
        for t in added where vocab[t.content] == nil { inv[Int(t.id)] = t.content }
        idToToken = inv
        addedTokens = added
        addedById = Dictionary(added.map { ($0.id, $0.content) }, uniquingKeysWith: { a, _ in a })
        addedScalars = added.map { Array($0.content.unicodeScalars) }
        addedFirstScalars = Set(addedScalars.compactMap(\.first))
        self.pattern = pattern
        self.addPrefixSpace = addPrefixSpace
        self.nfc = nfc
        self.ignoreMerges = ignoreMerges
        self.prefixIds = prefixIds
        self.suffixIds = suffixIds
        var bytes: [Int32] = []
        for b in 0..<256 {
            let ch = String(ByteLevel.byteToScalar[b])
            guard let id = vocab[ch] else {
                throw TokenizerError.invalid(
                    file: file, field: "model.vocab",
                    expected: "every byte-level character; byte \(b) ('\(ch)') is missing")
            }
            bytes.append(id)
        }
        byteIds = bytes
        var m: [UInt64: (Int32, Int32)] = [:]
        m.reserveCapacity(mergeList.count)
        for (rank, (a, b)) in mergeList.enumerated() {
            guard let ia = vocab[a], let ib = vocab[b], let merged = vocab[a + b] else {
                throw TokenizerError.invalid(
                    file: file, field: "model.merges[\(rank)]",
                    expected: "a pair of vocabulary tokens whose concatenation is in the vocabulary (got '\(a)' '\(b)')")
            }
            let key = UInt64(UInt32(bitPattern: ia)) << 32 | UInt64(UInt32(bitPattern: ib))
            if m[key] == nil { m[key] = (Int32(rank), merged) }
        }
        merges = m
    }
}
