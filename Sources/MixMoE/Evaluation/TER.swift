import Foundation

/// TER options, spelled as sacreBLEU's (`--ter-normalized`, `--ter-no-punct`,
/// `--ter-asian-support`, `--ter-case-sensitive`).
public struct TEROptions: Sendable, Equatable {
    public var normalized = false
    public var noPunct = false
    public var asianSupport = false
    public var caseSensitive = false
    public init(normalized: Bool = false, noPunct: Bool = false, asianSupport: Bool = false, caseSensitive: Bool = false) {
        self.normalized = normalized; self.noPunct = noPunct; self.asianSupport = asianSupport; self.caseSensitive = caseSensitive
    }

    /// sacreBLEU's signature fields.
    public var signature: String {
        "nrefs:1|case:\(caseSensitive ? "mixed" : "lc")|tok:tercom|norm:\(normalized ? "yes" : "no")|punct:\(noPunct ? "no" : "yes")|asian:\(asianSupport ? "yes" : "no")|version:mixmoe"
    }
}

/// Translation edit rate as sacreBLEU 2.x computes it (its `TercomTokenizer` and `lib_ter`, a
/// re-implementation of Tercom, Snover et al. 2006): the minimum number of word insertions,
/// deletions, substitutions and block shifts that turn the hypothesis into the reference, over the
/// reference length. Shifts are searched greedily as Tercom does (candidates ranked by edit
/// distance gained, then length, then earliest position), with its limits: blocks of at most 10
/// words moved at most 50 positions, 1000 candidates per segment; the edit distance is computed in
/// a beam of 25 around the length-scaled diagonal.
public enum TER {
    static let maxShiftSize = 10, maxShiftDist = 50, beamWidth = 25, maxShiftCandidates = 1000
    static let infinity = 10_000_000_000_000_000

    // MARK: tokenizer

    /// sacreBLEU's `TercomTokenizer`: lower-case unless case-sensitive, Tercom's normalisation,
    /// punctuation removal, whitespace collapsed.
    public static func tokenize(_ s: String, _ o: TEROptions) -> [String] {
        var t = pyRstrip(Array(s.unicodeScalars))
        guard !t.isEmpty else { return [] }
        if !o.caseSensitive { t = Array(String(String.UnicodeScalarView(t)).lowercased().unicodeScalars) }
        if o.normalized {
            t = normalizeGeneralAndWestern(t)
            if o.asianSupport { t = normalizeAsian(t) }
        }
        if o.noPunct {
            t = t.filter { !".,?:;!\"()".unicodeScalars.contains($0) }
            if o.asianSupport { t = t.filter { !isAsianPunct($0) && !isFullWidthPunct($0) } }
        }
        return pySplit(t).map { String(String.UnicodeScalarView($0)) }
    }

    /// Python's `re.sub(pattern, repl, s)` for a pattern of one character class per character:
    /// scans left to right, replacing each non-overlapping match.
    static func subSequence(
        _ s: [Unicode.Scalar], _ classes: [(Unicode.Scalar) -> Bool], _ repl: ([Unicode.Scalar]) -> [Unicode.Scalar]
    ) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = [], i = 0
        let k = classes.count
        while i < s.count {
            if i + k <= s.count, (0..<k).allSatisfy({ classes[$0](s[i + $0]) }) {
                out += repl(Array(s[i..<(i + k)])); i += k
            } else {
                out.append(s[i]); i += 1
            }
        }
        return out
    }

    static func literal(_ s: [Unicode.Scalar], _ from: String, _ to: String) -> [Unicode.Scalar] {
        let f = Array(from.unicodeScalars), t = Array(to.unicodeScalars)
        return subSequence(s, f.map { c in { $0 == c } }) { _ in t }
    }

    static func isDigit(_ c: Unicode.Scalar) -> Bool { c.value >= 0x30 && c.value <= 0x39 }
    static func padded(_ m: [Unicode.Scalar]) -> [Unicode.Scalar] { [" "] + m + [" "] }

    /// Tercom's `Normalizer` (language-independent and Western parts), as sacreBLEU writes it.
    static func normalizeGeneralAndWestern(_ s0: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var s = literal(s0, "\n-", "")  // end-of-line hyphenation
        s = literal(s, "\n", " ")
        for (a, b) in [("&quot;", "\""), ("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">")] { s = literal(s, a, b) }
        s = [" "] + s + [" "]
        // ([{-~[-` -&(-+:-@/]) -> " \1 "
        let punct: (Unicode.Scalar) -> Bool = { c in
            let v = c.value
            return (0x7B...0x7E).contains(v) || (0x5B...0x60).contains(v) || (0x20...0x26).contains(v)
                || (0x28...0x2B).contains(v) || (0x3A...0x40).contains(v) || v == 0x2F
        }
        s = subSequence(s, [punct], padded)
        s = literal(s, "'s ", " 's ")  // possessives
        if s.count >= 2, s[s.count - 2] == "'", s[s.count - 1] == "s" { s = Array(s.dropLast(2)) + Array(" 's".unicodeScalars) }
        let periodComma: (Unicode.Scalar) -> Bool = { $0 == "." || $0 == "," }
        s = subSequence(s, [{ !isDigit($0) }, periodComma]) { [$0[0], " ", $0[1], " "] }  // unless preceded by a digit
        s = subSequence(s, [periodComma, { !isDigit($0) }]) { [" ", $0[0], " ", $0[1]] }  // unless followed by a digit
        s = subSequence(s, [isDigit, { $0 == "-" }]) { [$0[0], " ", $0[1], " "] }  // dash after a digit
        return s
    }

    static func inRanges(_ c: Unicode.Scalar, _ r: [ClosedRange<UInt32>]) -> Bool { r.contains { $0.contains(c.value) } }
    static func isAsianPunct(_ c: Unicode.Scalar) -> Bool {
        inRanges(c, [0x3001...0x3002, 0x3008...0x3011, 0x3014...0x301F, 0xFF61...0xFF65, 0x30FB...0x30FB])
    }
    static func isFullWidthPunct(_ c: Unicode.Scalar) -> Bool {
        [0xFF0E, 0xFF0C, 0xFF1F, 0xFF1A, 0xFF1B, 0xFF01, 0xFF02, 0xFF08, 0xFF09].contains(c.value)
    }

    /// CJK characters split to character level (sacreBLEU's `_normalize_asian`). Its kana rules
    /// can only match at the start of the string, which the Western step has padded with a space,
    /// so they never apply and are left out here.
    static func normalizeAsian(_ s0: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var s = s0
        for ranges in [
            [0x4E00...0x9FFF, 0x3400...0x4DBF], [0x31C0...0x31EF, 0x2E80...0x2EFF],
            [0x3300...0x33FF, 0xF900...0xFAFF, 0xFE30...0xFE4F], [0x3200...0x3F22],
        ] as [[ClosedRange<UInt32>]] {
            s = subSequence(s, [{ inRanges($0, ranges) }], padded)
        }
        s = subSequence(s, [isAsianPunct], padded)
        return subSequence(s, [isFullWidthPunct], padded)
    }

    // MARK: edit rate

    /// (edits, reference length) of one segment: sacreBLEU's `translation_edit_rate`.
    public static func editRate(hypothesis h: [String], reference r: [String]) -> (edits: Int, refLength: Int) {
        if r.isEmpty { return (h.count, 0) }
        // words as integers (equality is all that matters; Python compares strings by code points)
        var ids: [String: Int] = [:]
        func id(_ w: String) -> Int {
            if let i = ids[w] { return i }
            ids[w] = ids.count
            return ids.count - 1
        }
        let ref = r.map(id)
        var hyp = h.map(id)
        let words = Array(ids.keys.sorted { ids[$0]! < ids[$1]! })
        let ed = BeamEditDistance(ref)
        var shifts = 0, checked = 0
        while true {
            let (delta, shifted, c) = bestShift(hyp, ref, ed, checked, words: words)
            checked = c
            if checked >= maxShiftCandidates || delta <= 0 { break }
            shifts += 1
            hyp = shifted
        }
        return (shifts + ed.distance(hyp).cost, r.count)
    }

    /// One step of Tercom's greedy shift search: the shift that reduces the edit distance most.
    static func bestShift(
        _ h: [Int], _ r: [Int], _ ed: BeamEditDistance, _ checked0: Int, words: [String]
    )
        -> (Int, [Int], Int)
    {
        let (pre, inverse) = ed.distance(h)
        // we rewrite the reference into the hypothesis: flip insertions and deletions
        let trace = inverse.map { $0 == .ins ? Op.del : $0 == .del ? Op.ins : $0 }
        let (align, refErr, hypErr) = alignment(trace)
        var checked = checked0
        var best: (score: Int, length: Int, negStart: Int, negIdx: Int, words: [Int])? = nil
        func better(_ c: (Int, Int, Int, Int, [Int]), _ b: (Int, Int, Int, Int, [Int])) -> Bool {
            if c.0 != b.0 { return c.0 > b.0 }
            if c.1 != b.1 { return c.1 > b.1 }
            if c.2 != b.2 { return c.2 > b.2 }
            if c.3 != b.3 { return c.3 > b.3 }
            // Python compares the word lists: lexicographically, strings by code points
            for (x, y) in zip(c.4, b.4) where x != y {
                return Array(words[x].unicodeScalars.map(\.value)).lexicographicallyPrecedes(words[y].unicodeScalars.map(\.value)) == false
            }
            return c.4.count > b.4.count
        }
        outer: for (startH, startR, length) in shiftedPairs(h, r) {
            if hypErr[startH..<(startH + length)].allSatisfy({ $0 == 0 }) { continue }
            if refErr[startR..<min(startR + length, refErr.count)].allSatisfy({ $0 == 0 }) { continue }
            if let a = align[startR], startH <= a, a < startH + length { continue }  // not within the block itself
            var prevIdx = -1
            for offset in -1..<length {
                let idx: Int
                if startR + offset == -1 {
                    idx = 0
                } else if let a = align[startR + offset] {
                    idx = a + 1  // insert before the index (Tercom inserts after)
                } else {
                    break
                }
                if idx == prevIdx { continue }
                prevIdx = idx
                let shifted = performShift(h, start: startH, length: length, target: idx)
                let cand = (pre - ed.distance(shifted).cost, length, -startH, -idx, shifted)
                checked += 1
                if best == nil || better(cand, best!) { best = cand }
            }
            if checked >= maxShiftCandidates { break outer }
        }
        guard let b = best else { return (0, h, checked) }
        return (b.score, b.words, checked)
    }

    /// sacreBLEU's `_perform_shift`. Its slices follow Python's rules, which clamp out-of-range
    /// bounds (a shift "within the shifted string" may slice up to `length + target`, past the
    /// end), so every slice here is clamped the same way.
    static func performShift(_ w: [Int], start: Int, length: Int, target: Int) -> [Int] {
        func py(_ a: Int?, _ b: Int?) -> ArraySlice<Int> {  // w[a:b] for non-negative a, b
            let lo = min(a ?? 0, w.count), hi = min(b ?? w.count, w.count)
            return lo < hi ? w[lo..<hi] : []
        }
        if target < start {
            return Array(py(nil, target) + py(start, start + length) + py(target, start) + py(start + length, nil))
        } else if target > start + length {
            return Array(py(nil, start) + py(start + length, target) + py(start, start + length) + py(target, nil))
        } else {
            return Array(py(nil, start) + py(start + length, length + target) + py(start, start + length) + py(length + target, nil))
        }
    }

    /// Matching word blocks (h start, r start, length), in sacreBLEU's order.
    static func shiftedPairs(_ h: [Int], _ r: [Int]) -> [(Int, Int, Int)] {
        var out: [(Int, Int, Int)] = []
        for sh in 0..<h.count {
            for sr in 0..<r.count where abs(sr - sh) <= maxShiftDist {
                var length = 0
                while h[sh + length] == r[sr + length] && length < maxShiftSize {
                    length += 1
                    out.append((sh, sr, length))
                    if h.count == sh + length || r.count == sr + length { break }
                }
            }
        }
        return out
    }

    enum Op: UInt8 { case nop, sub, ins, del, undef }

    /// Alignment (reference position -> hypothesis position) and error flags from a trace.
    static func alignment(_ trace: [Op]) -> ([Int: Int], [Int], [Int]) {
        var ph = -1, pr = -1, align: [Int: Int] = [:], hypErr: [Int] = [], refErr: [Int] = []
        for op in trace {
            switch op {
            case .nop, .sub:
                ph += 1; pr += 1; align[pr] = ph
                let e = op == .sub ? 1 : 0
                hypErr.append(e); refErr.append(e)
            case .ins: ph += 1; hypErr.append(1)
            case .del: pr += 1; align[pr] = ph; refErr.append(1)
            case .undef: preconditionFailure("undefined TER trace operation")
            }
        }
        return (align, refErr, hypErr)
    }

    /// Levenshtein distance of a hypothesis to the fixed reference, computed only in a beam around
    /// the length-scaled diagonal (cells outside stay infinite), with the operation of each cell
    /// for the trace. Ties prefer no-op/substitution, then deletion, then insertion.
    final class BeamEditDistance {
        let ref: [Int]
        init(_ ref: [Int]) { self.ref = ref }

        func distance(_ h: [Int]) -> (cost: Int, trace: [Op]) {
            let nh = h.count, nr = ref.count, w = nr + 1
            var cost = [Int](repeating: TER.infinity, count: (nh + 1) * w)
            var op = [Op](repeating: .undef, count: (nh + 1) * w)
            for j in 0...nr { cost[j] = j; op[j] = .ins }
            let ratio = h.isEmpty ? 1.0 : Double(nr) / Double(nh)
            let beam = Double(TER.beamWidth) < ratio / 2 ? Int((ratio / 2 + Double(TER.beamWidth)).rounded(.up)) : TER.beamWidth
            if nh > 0 {
                for i in 1...nh {
                    let diag = Int((Double(i) * ratio).rounded(.down))
                    let lo = max(0, diag - beam)
                    let hi = i == nh ? nr + 1 : min(nr + 1, diag + beam)
                    for j in lo..<max(lo, hi) {
                        let at = i * w + j
                        if j == 0 {
                            cost[at] = cost[(i - 1) * w] + 1; op[at] = .del
                            continue
                        }
                        let same = h[i - 1] == ref[j - 1]
                        for (c, o) in [
                            (cost[(i - 1) * w + j - 1] + (same ? 0 : 1), same ? Op.nop : .sub),
                            (cost[(i - 1) * w + j] + 1, .del), (cost[at - 1] + 1, .ins),
                        ] where cost[at] > c {
                            cost[at] = c; op[at] = o
                        }
                    }
                }
            }
            var trace: [Op] = []
            var i = nh, j = nr
            while i > 0 || j > 0 {
                let o = op[i * w + j]
                trace.append(o)
                switch o {
                case .sub, .nop: i -= 1; j -= 1
                case .ins: j -= 1
                case .del: i -= 1
                case .undef: preconditionFailure("TER beam left the trace undefined")
                }
            }
            return (cost[nh * w + nr], trace.reversed())
        }
    }
}
