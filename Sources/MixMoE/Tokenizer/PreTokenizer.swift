/// The regex splits of byte-level BPE tokenizers, written by hand (no regex engine) for speed and
/// exactness. Each follows its pattern's leftmost-first alternation:
///
/// - gpt2:   `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
/// - llama3: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
/// - qwen2:  as llama3 with `\p{N}` (one digit) instead of `\p{N}{1,3}`
public enum SplitPattern: String, Sendable, CaseIterable {
    case gpt2, llama3, qwen2

    public static let regexes: [SplitPattern: String] = [
        .gpt2: #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#,
        .llama3: #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        .qwen2: #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
    ]

    /// The pattern whose regex source is `regex`, if it is one we implement.
    public init?(regex: String) {
        guard let p = SplitPattern.regexes.first(where: { $0.value == regex })?.key else { return nil }
        self = p
    }

    public var regex: String { SplitPattern.regexes[self]! }

    /// Splits `s` into consecutive pieces (ranges of scalar indices) covering all of it.
    public func split(_ s: [Unicode.Scalar]) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var i = 0
        while i < s.count {
            let end = matchAt(s, i)
            out.append(i..<end)
            i = end
        }
        return out
    }

    /// End of the match starting at `i` (always > i: the last alternatives match any char class).
    func matchAt(_ s: [Unicode.Scalar], _ i: Int) -> Int {
        let n = s.count
        let caseless = self != .gpt2
        // 1. contractions
        if s[i] == "'" && i + 1 < n {
            let a = lower(s[i + 1], caseless)
            if a == "s" || a == "t" || a == "m" || a == "d" { return i + 2 }
            if i + 2 < n {
                let b = lower(s[i + 2], caseless)
                if (a == "r" && b == "e") || (a == "v" && b == "e") || (a == "l" && b == "l") { return i + 3 }
            }
        }
        switch self {
        case .gpt2:
            // 2-4. ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`
            let j = (s[i] == " " && i + 1 < n) ? i + 1 : i
            for cls in [isLetter, isNumber, isOther] as [(Unicode.Scalar) -> Bool] {
                if cls(s[j]) { return run(s, from: j, cls) }
                if j != i, cls(s[i]) { return run(s, from: i, cls) }  // no space prefix
            }
        case .llama3, .qwen2:
            // 2. `[^\r\n\p{L}\p{N}]?\p{L}+`
            if i + 1 < n, !isNewline(s[i]), !isLetter(s[i]), !isNumber(s[i]), isLetter(s[i + 1]) {
                return run(s, from: i + 1, isLetter)
            }
            if isLetter(s[i]) { return run(s, from: i, isLetter) }
            // 3. `\p{N}{1,3}` or `\p{N}`
            if isNumber(s[i]) {
                let maxLen = self == .llama3 ? 3 : 1
                var j = i
                while j < n, j - i < maxLen, isNumber(s[j]) { j += 1 }
                return j
            }
            // 4. ` ?[^\s\p{L}\p{N}]+[\r\n]*`
            var j = -1
            if s[i] == " ", i + 1 < n, isOther(s[i + 1]) { j = run(s, from: i + 1, isOther) } else if isOther(s[i]) { j = run(s, from: i, isOther) }
            if j >= 0 {
                while j < n, isNewline(s[j]) { j += 1 }
                return j
            }
            // 5. `\s*[\r\n]+`: through the last newline of the whitespace run
            let w = run(s, from: i, isSpace)
            var lastNL = -1
            for k in i..<w where isNewline(s[k]) { lastNL = k }
            if lastNL >= 0 { return lastNL + 1 }
        }
        // 6-7. `\s+(?!\S)` then `\s+`
        if isSpace(s[i]) {
            let w = run(s, from: i, isSpace)
            if w == n { return w }  // whitespace to the end
            if w - i >= 2 { return w - 1 }  // leave the last one to prefix the next word
            return w  // single whitespace before \S: `\s+`
        }
        return i + 1  // unreachable for valid input: every scalar is L, N, \s or other
    }

    @inline(__always) func run(_ s: [Unicode.Scalar], from i: Int, _ cls: (Unicode.Scalar) -> Bool) -> Int {
        var j = i
        while j < s.count, cls(s[j]) { j += 1 }
        return j
    }

    @inline(__always) func lower(_ c: Unicode.Scalar, _ caseless: Bool) -> Unicode.Scalar {
        guard caseless, c.value >= 65, c.value <= 90 else { return c }
        return Unicode.Scalar(c.value + 32)!
    }
}

// Character classes of the patterns (Unicode general categories; \s = White_Space). Scalars
// below U+3000 (Latin, Greek, Cyrillic, Arabic, ... and most punctuation) use a precomputed table.
private let classTableLimit: UInt32 = 0x3000
private let classTable: [UInt8] = (0..<classTableLimit).map { v in
    let c = Unicode.Scalar(v) ?? " "
    return (slowIsLetter(c) ? 1 : 0) | (slowIsNumber(c) ? 2 : 0) | (slowIsSpace(c) ? 4 : 0)
}

private func slowIsLetter(_ c: Unicode.Scalar) -> Bool {
    switch c.properties.generalCategory {
    case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
    default: return false
    }
}

private func slowIsNumber(_ c: Unicode.Scalar) -> Bool {
    switch c.properties.generalCategory {
    case .decimalNumber, .letterNumber, .otherNumber: return true
    default: return false
    }
}

private func slowIsSpace(_ c: Unicode.Scalar) -> Bool { c.properties.isWhitespace }

@inline(__always) func isLetter(_ c: Unicode.Scalar) -> Bool {
    let v = c.value
    if v < 128 { return (v >= 65 && v <= 90) || (v >= 97 && v <= 122) }
    return v < classTableLimit ? classTable[Int(v)] & 1 != 0 : slowIsLetter(c)
}

@inline(__always) func isNumber(_ c: Unicode.Scalar) -> Bool {
    let v = c.value
    if v < 128 { return v >= 48 && v <= 57 }
    return v < classTableLimit ? classTable[Int(v)] & 2 != 0 : slowIsNumber(c)
}

@inline(__always) func isSpace(_ c: Unicode.Scalar) -> Bool {
    let v = c.value
    if v < 128 { return v == 32 || (v >= 9 && v <= 13) }
    return v < classTableLimit ? classTable[Int(v)] & 4 != 0 : slowIsSpace(c)
}

@inline(__always) func isNewline(_ c: Unicode.Scalar) -> Bool { c == "\n" || c == "\r" }

/// `[^\s\p{L}\p{N}]`
@inline(__always) func isOther(_ c: Unicode.Scalar) -> Bool { !isSpace(c) && !isLetter(c) && !isNumber(c) }
