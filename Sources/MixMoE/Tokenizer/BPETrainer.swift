import Foundation

/// Trains a byte-level BPE vocabulary (the algorithm of Sennrich et al. as HF's `BpeTrainer` runs
/// it): count pre-tokenised words, start from the 256 byte symbols, repeatedly merge the most
/// frequent adjacent pair (ties: smaller pair ids first) until the vocabulary is full.
public struct BPETrainer {
    public var vocabSize: Int
    public var specialTokens: [String]
    public var pattern: SplitPattern = .llama3
    public var minFrequency = 2

    public init(vocabSize: Int, specialTokens: [String], pattern: SplitPattern = .llama3) {
        self.vocabSize = vocabSize
        self.specialTokens = specialTokens
        self.pattern = pattern
    }

    /// Word counts of some text (one call per line or chunk).
    public func countWords(_ text: Substring, into counts: inout [String: Int]) {
        let scalars = Array(text.unicodeScalars)
        for r in pattern.split(scalars) {
            counts[String(String.UnicodeScalarView(scalars[r])), default: 0] += 1
        }
    }

    public struct Result {
        public var vocab: [String: Int32]
        public var merges: [(String, String)]
        public var added: [BPETokenizer.AddedToken]
    }

    public func train(wordCounts: [String: Int], progress: ((Int, Int) -> Void)? = nil) throws -> Result {
        guard vocabSize >= specialTokens.count + 256 else {
            throw TokenizerError.invalid(
                file: "--vocab-size", field: "vocab_size",
                expected: "at least \(specialTokens.count + 256) (256 bytes + special tokens)")
        }
        var tokens: [String] = []
        var vocab: [String: Int32] = [:]
        var added: [BPETokenizer.AddedToken] = []
        for s in specialTokens {
            added.append(.init(id: Int32(tokens.count), content: s, special: true))
            vocab[s] = Int32(tokens.count); tokens.append(s)
        }
        for b in 0..<256 {
            let t = String(ByteLevel.byteToScalar[b])
            vocab[t] = Int32(tokens.count); tokens.append(t)
        }
        let byteBase = Int32(specialTokens.count)
        // words as symbol sequences, in a fixed order (sorted) so training is deterministic
        let sortedWords = wordCounts.keys.sorted()
        var words: [[Int32]] = sortedWords.map { w in w.utf8.map { byteBase + Int32($0) } }
        let freq: [Int] = sortedWords.map { wordCounts[$0]! }

        var pairCount: [UInt64: Int] = [:]
        var whereIs: [UInt64: [Int32]] = [:]
        func key(_ a: Int32, _ b: Int32) -> UInt64 { UInt64(UInt32(a)) << 32 | UInt64(UInt32(b)) }
        for (wi, w) in words.enumerated() where w.count > 1 {
            for k in 0..<(w.count - 1) {
                let p = key(w[k], w[k + 1])
                pairCount[p, default: 0] += freq[wi]
                whereIs[p, default: []].append(Int32(wi))
            }
        }
        var heap = PairHeap()
        for (p, c) in pairCount { heap.push(c, p) }

        var merges: [(String, String)] = []
        let target = vocabSize
        while tokens.count < target, let (c, p) = heap.pop() {
            guard let current = pairCount[p], current > 0 else { continue }
            if current != c { heap.push(current, p); continue }  // stale entry
            if current < minFrequency { break }
            let a = Int32(truncatingIfNeeded: p >> 32), b = Int32(truncatingIfNeeded: p & 0xFFFF_FFFF)
            let merged = tokens[Int(a)] + tokens[Int(b)]
            let newId: Int32
            if let existing = vocab[merged] {
                newId = existing
            } else {
                newId = Int32(tokens.count); vocab[merged] = newId; tokens.append(merged)
            }
            merges.append((tokens[Int(a)], tokens[Int(b)]))
            var touched = Set<UInt64>()
            var seen = Set<Int32>()
            for wi in whereIs[p] ?? [] where seen.insert(wi).inserted {
                let w = words[Int(wi)]
                guard w.count > 1 else { continue }
                var has = false
                for k in 0..<(w.count - 1) where w[k] == a && w[k + 1] == b { has = true; break }
                guard has else { continue }
                let f = freq[Int(wi)]
                for k in 0..<(w.count - 1) { pairCount[key(w[k], w[k + 1])]! -= f; touched.insert(key(w[k], w[k + 1])) }
                var nw: [Int32] = []
                nw.reserveCapacity(w.count)
                var k = 0
                while k < w.count {
                    if k + 1 < w.count, w[k] == a, w[k + 1] == b { nw.append(newId); k += 2 } else { nw.append(w[k]); k += 1 }
                }
                words[Int(wi)] = nw
                if nw.count > 1 {
                    for k in 0..<(nw.count - 1) {
                        let q = key(nw[k], nw[k + 1])
                        pairCount[q, default: 0] += f
                        touched.insert(q)
                        if nw[k] == newId || nw[k + 1] == newId { whereIs[q, default: []].append(wi) }
                    }
                }
            }
            pairCount[p] = 0
            whereIs[p] = nil
            for q in touched where q != p { if let c = pairCount[q], c > 0 { heap.push(c, q) } }
            progress?(tokens.count, target)
        }
        return Result(vocab: vocab, merges: merges, added: added)
    }
}

/// Max-heap of (count, pair); ties pop the smaller pair key first (deterministic).
struct PairHeap {
    private var a: [(Int, UInt64)] = []
    @inline(__always) private func above(_ x: (Int, UInt64), _ y: (Int, UInt64)) -> Bool {
        x.0 != y.0 ? x.0 > y.0 : x.1 < y.1
    }
    mutating func push(_ c: Int, _ p: UInt64) {
        a.append((c, p))
        var i = a.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard above(a[i], a[parent]) else { break }
            a.swapAt(i, parent); i = parent
        }
    }
    mutating func pop() -> (Int, UInt64)? {
        guard !a.isEmpty else { return nil }
        let top = a[0]
        let last = a.removeLast()
        if !a.isEmpty {
            a[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < a.count, above(a[l], a[m]) { m = l }
                if r < a.count, above(a[r], a[m]) { m = r }
                if m == i { break }
                a.swapAt(i, m); i = m
            }
        }
        return top
    }
}
