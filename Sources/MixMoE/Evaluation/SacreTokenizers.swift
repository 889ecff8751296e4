/// sacreBLEU 2.x's BLEU tokenizers, re-implemented on Unicode scalars (Python strings are code
/// point sequences; Swift `String` comparison is canonical equivalence, which sacreBLEU does not
/// use). Each rule reproduces Python `re.sub`'s left-to-right, non-overlapping scan.
public enum SacreTokenizer: String, Sendable, CaseIterable {
    case t13a = "13a", zh, intl, char, none

    /// Tokenised text as space-separated tokens.
    public func callAsFunction(_ line: [Unicode.Scalar]) -> [Unicode.Scalar] {
        switch self {
        case .t13a: return Self.tok13a(line)
        case .zh: return Self.tokZh(line)
        case .intl: return Self.tokIntl(line)
        case .char:
            var out: [Unicode.Scalar] = []
            for (i, c) in line.enumerated() { if i > 0 { out.append(" ") }; out.append(c) }
            return out
        case .none: return line
        }
    }

    // MARK: 13a (mteval-v13a) and its regexp post-tokenizer

    static func tok13a(_ input: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var s = String(String.UnicodeScalarView(input))
        s = s.replacingScalars("<skipped>", with: "")
        s = s.replacingScalars("-\n", with: "")
        s = s.replacingScalars("\n", with: " ")
        if s.unicodeScalars.contains("&") {
            s = s.replacingScalars("&quot;", with: "\"").replacingScalars("&amp;", with: "&")
                .replacingScalars("&lt;", with: "<").replacingScalars("&gt;", with: ">")
        }
        return regexpPost([" "] + Array(s.unicodeScalars) + [" "])
    }

    /// `[\{-\~\[-\` -\&\(-\+\:-\@\/]`
    static func isPunct13a(_ c: Unicode.Scalar) -> Bool {
        let v = c.value
        return (0x7B...0x7E).contains(v) || (0x5B...0x60).contains(v) || (0x20...0x26).contains(v)
            || (0x28...0x2B).contains(v) || (0x3A...0x40).contains(v) || v == 0x2F
    }

    static func isDigit(_ c: Unicode.Scalar) -> Bool { c.value >= 48 && c.value <= 57 }
    static func isDotComma(_ c: Unicode.Scalar) -> Bool { c == "." || c == "," }

    /// TokenizerRegexp: four substitutions, then `' '.join(line.split())`.
    static func regexpPost(_ s0: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var s: [Unicode.Scalar] = []
        for c in s0 { if isPunct13a(c) { s += [" ", c, " "] } else { s.append(c) } }  // ' \1 '
        s = sub2(s) {
            !isDigit($0) && isDotComma($1)
        } replace: {
            [$0, " ", $1, " "]
        }  // ([^0-9])([\.,]) -> '\1 \2 '
        s = sub2(s) {
            isDotComma($0) && !isDigit($1)
        } replace: {
            [" ", $0, " ", $1]
        }  // ([\.,])([^0-9]) -> ' \1 \2'
        s = sub2(s) {
            isDigit($0) && $1 == "-"
        } replace: {
            [$0, " ", $1, " "]
        }  // ([0-9])(-) -> '\1 \2 '
        return joinSplit(s)
    }

    /// A two-character pattern substituted left to right without overlap (Python `re.sub`).
    static func sub2(
        _ s: [Unicode.Scalar], _ match: (Unicode.Scalar, Unicode.Scalar) -> Bool,
        replace: (Unicode.Scalar, Unicode.Scalar) -> [Unicode.Scalar]
    ) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(s.count + 16)
        var i = 0
        while i < s.count {
            if i + 1 < s.count, match(s[i], s[i + 1]) {
                out += replace(s[i], s[i + 1]); i += 2
            } else {
                out.append(s[i]); i += 1
            }
        }
        return out
    }

    // MARK: zh

    /// sacreBLEU's `_UCODE_RANGES`, compared as Python compares strings. Two entries are written
    /// as `u'\u20000'` and `u'\u2f800'` in sacreBLEU: Python reads those as two-character strings
    /// ('\u2000' + '0', ...), so under string comparison they cover U+2001...U+2A6D and
    /// U+2F81...U+2FA1. Reproduced literally, since that is what sacreBLEU scores.
    static let zhRanges: [([UInt32], [UInt32])] = [
        ([0x3400], [0x4DB5]), ([0x4E00], [0x9FA5]), ([0x9FA6], [0x9FBB]), ([0xF900], [0xFA2D]),
        ([0xFA30], [0xFA6A]), ([0xFA70], [0xFAD9]), ([0x2000, 0x30], [0x2A6D, 0x36]),
        ([0x2F80, 0x30], [0x2FA1, 0x64]), ([0xFF00], [0xFFEF]), ([0x2E80], [0x2EFF]), ([0x3000], [0x303F]),
        ([0x31C0], [0x31EF]), ([0x2F00], [0x2FDF]), ([0x2FF0], [0x2FFF]), ([0x3100], [0x312F]),
        ([0x31A0], [0x31BF]), ([0xFE10], [0xFE1F]), ([0xFE30], [0xFE4F]), ([0x2600], [0x26FF]),
        ([0x2700], [0x27BF]), ([0x3200], [0x32FF]), ([0x3300], [0x33FF]),
    ]

    /// Python's `a <= b` on code point sequences.
    static func pyLE(_ a: [UInt32], _ b: [UInt32]) -> Bool {
        for (x, y) in zip(a, b) where x != y { return x < y }
        return a.count <= b.count
    }

    static func isChineseSacre(_ c: Unicode.Scalar) -> Bool {
        zhRanges.contains { pyLE($0.0, [c.value]) && pyLE([c.value], $0.1) }
    }

    static func tokZh(_ line: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        for c in pyStrip(line) {
            if isChineseSacre(c) { out += [" ", c, " "] } else { out.append(c) }
        }
        return regexpPost(out)
    }

    // MARK: intl (mteval-v14 international)

    static func isP(_ c: Unicode.Scalar) -> Bool {
        switch c.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
            .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return true
        default: return false
        }
    }

    static func isS(_ c: Unicode.Scalar) -> Bool {
        switch c.properties.generalCategory {
        case .mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol: return true
        default: return false
        }
    }

    static func isN(_ c: Unicode.Scalar) -> Bool {
        switch c.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }

    static func tokIntl(_ line: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var s = sub2(line) {
            !isN($0) && isP($1)
        } replace: {
            [$0, " ", $1, " "]
        }  // (\P{N})(\p{P}) -> '\1 \2 '
        s = sub2(s) {
            isP($0) && !isN($1)
        } replace: {
            [" ", $0, " ", $1]
        }  // (\p{P})(\P{N}) -> ' \1 \2'
        var out: [Unicode.Scalar] = []
        for c in s { if isS(c) { out += [" ", c, " "] } else { out.append(c) } }  // (\p{S}) -> ' \1 '
        return joinSplit(out)
    }
}

// MARK: Python string helpers

/// Python's `str.isspace()` (what `str.split()` and `strip()` use).
@inline(__always) func pyIsSpace(_ c: Unicode.Scalar) -> Bool {
    switch c.value {
    case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: return true
    default: return false
    }
}

/// `line.split()`: maximal runs of non-space code points.
func pySplit(_ s: [Unicode.Scalar]) -> [ArraySlice<Unicode.Scalar>] {
    var out: [ArraySlice<Unicode.Scalar>] = []
    var i = 0
    while i < s.count {
        while i < s.count, pyIsSpace(s[i]) { i += 1 }
        let start = i
        while i < s.count, !pyIsSpace(s[i]) { i += 1 }
        if i > start { out.append(s[start..<i]) }
    }
    return out
}

/// `' '.join(line.split())`
func joinSplit(_ s: [Unicode.Scalar]) -> [Unicode.Scalar] {
    var out: [Unicode.Scalar] = []
    for (k, w) in pySplit(s).enumerated() { if k > 0 { out.append(" ") }; out += w }
    return out
}

func pyStrip(_ s: [Unicode.Scalar]) -> ArraySlice<Unicode.Scalar> {
    var lo = 0, hi = s.count
    while lo < hi, pyIsSpace(s[lo]) { lo += 1 }
    while hi > lo, pyIsSpace(s[hi - 1]) { hi -= 1 }
    return s[lo..<hi]
}

func pyRstrip(_ s: [Unicode.Scalar]) -> [Unicode.Scalar] {
    var hi = s.count
    while hi > 0, pyIsSpace(s[hi - 1]) { hi -= 1 }
    return Array(s[0..<hi])
}

extension String {
    /// Replace occurrences by code points (Foundation's `replacingOccurrences` compares with
    /// canonical equivalence, which Python's `str.replace` does not).
    func replacingScalars(_ target: String, with rep: String) -> String {
        let s = Array(unicodeScalars), t = Array(target.unicodeScalars)
        guard !t.isEmpty, s.count >= t.count else { return self }
        var out = String.UnicodeScalarView()
        var i = 0
        while i < s.count {
            if i + t.count <= s.count, Array(s[i..<(i + t.count)]) == t {
                out.append(contentsOf: rep.unicodeScalars); i += t.count
            } else {
                out.append(s[i]); i += 1
            }
        }
        return String(out)
    }
}
