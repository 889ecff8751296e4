import Foundation

/// Decodes ids one at a time, in time linear in the output: the text of every complete UTF-8
/// character is returned as soon as its last byte arrives, and a character split across tokens
/// (byte-level BPE splits CJK and emoji that way) is held until it is whole. The concatenation
/// of everything ``add(_:)`` and ``finish()`` return equals `tokenizer.decode(ids)` of all the
/// ids, U+FFFD for invalid bytes included.
public struct IncrementalDecoder {
    public let tokenizer: BPETokenizer
    public let skipSpecialTokens: Bool
    /// Bytes not yet returned: at most an incomplete character (3 bytes) between calls.
    private var pending: [UInt8] = []

    public init(_ tokenizer: BPETokenizer, skipSpecialTokens: Bool = false) {
        self.tokenizer = tokenizer
        self.skipSpecialTokens = skipSpecialTokens
    }

    /// The text that `id` completes.
    public mutating func add(_ id: Int32) -> String {
        pending += tokenizer.bytes(of: id, skipSpecialTokens: skipSpecialTokens)
        let keep = Self.incompleteTail(pending)
        guard pending.count > keep else { return "" }
        let text = String(decoding: pending[..<(pending.count - keep)], as: UTF8.self)
        pending.removeFirst(pending.count - keep)
        return text
    }

    /// The rest at the end of generation: a character left incomplete becomes U+FFFD.
    public mutating func finish() -> String {
        defer { pending = [] }
        return String(decoding: pending, as: UTF8.self)
    }

    /// How many trailing bytes are the valid beginning of a multi-byte character still missing
    /// bytes (0 when the buffer ends on a character boundary or in bytes that can never become
    /// valid, which the decoder replaces now, as a whole decode would). A split just before a
    /// lead byte is also a boundary of the whole decode, so decoding the two parts apart gives
    /// the same text.
    static func incompleteTail(_ b: [UInt8]) -> Int {
        // the last lead byte within the final 3 bytes, and how long its sequence must be
        var i = b.count - 1
        while i >= 0 && i >= b.count - 3 && b[i] & 0xC0 == 0x80 { i -= 1 }  // skip continuation bytes
        guard i >= 0, i >= b.count - 3 else { return 0 }
        let lead = b[i], have = b.count - i
        let need: Int
        switch lead {
        case 0xC2...0xDF: need = 2
        case 0xE0...0xEF: need = 3
        case 0xF0...0xF4: need = 4
        default: return 0  // ASCII or a byte that never starts a sequence
        }
        guard have < need else { return 0 }
        // the second byte's range for the leads with a narrower one (Unicode Table 3-7)
        if have >= 2 {
            let second = b[i + 1]
            let ok: Bool
            switch lead {
            case 0xE0: ok = (0xA0...0xBF).contains(second)
            case 0xED: ok = (0x80...0x9F).contains(second)
            case 0xF0: ok = (0x90...0xBF).contains(second)
            case 0xF4: ok = (0x80...0x8F).contains(second)
            default: ok = true
            }
            if !ok { return 0 }
        }
        return have
    }
}
