/// Language codes the prompt understands, with the English names ALMA's prompt uses.
public enum Languages {
    public static let names: [String: String] = [
        "en": "English", "de": "German", "cs": "Czech", "ru": "Russian", "tr": "Turkish", "zh": "Chinese",
        "fi": "Finnish", "et": "Estonian", "fr": "French", "es": "Spanish", "it": "Italian", "pt": "Portuguese",
        "nl": "Dutch", "pl": "Polish", "uk": "Ukrainian", "is": "Icelandic", "ja": "Japanese", "ko": "Korean",
        "ar": "Arabic", "hi": "Hindi", "sv": "Swedish", "da": "Danish", "no": "Norwegian", "hu": "Hungarian",
        "ro": "Romanian", "lv": "Latvian", "lt": "Lithuanian", "gu": "Gujarati", "kk": "Kazakh", "ha": "Hausa",
    ]

    public static func name(_ code: String, file: String, line: Int? = nil) throws -> String {
        guard let n = names[code] else {
            throw DataError.malformed(
                file: file, line: line ?? 0,
                expected: "a known language code (got '\(code)'; known: \(names.keys.sorted().joined(separator: ", ")))")
        }
        return n
    }
}

/// A translation direction such as de-en.
public struct Direction: Hashable, Sendable, CustomStringConvertible {
    public var src: String
    public var tgt: String
    public init(_ src: String, _ tgt: String) { self.src = src; self.tgt = tgt }
    /// Parses "de-en".
    public init?(_ s: String) {
        let p = s.split(separator: "-")
        guard p.count == 2, Languages.names[String(p[0])] != nil, Languages.names[String(p[1])] != nil else { return nil }
        src = String(p[0]); tgt = String(p[1])
    }
    public var description: String { "\(src)-\(tgt)" }
}

extension Direction {
    /// Parses a comma-separated list such as `de-en,en-de`; nil for nil.
    public static func parseList(_ s: String?, option: String = "--directions") throws -> Set<Direction>? {
        guard let s else { return nil }
        return Set(
            try s.split(separator: ",").map { p in
                guard let d = Direction(String(p)) else {
                    throw SettingsError.invalid(option: option, expected: "directions like de-en with known language codes (got '\(p)')")
                }
                return d
            })
    }
}
