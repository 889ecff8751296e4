import Foundation

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
