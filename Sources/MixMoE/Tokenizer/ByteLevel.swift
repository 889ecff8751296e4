/// GPT-2's reversible byte <-> unicode map (ByteLevel pre-tokenizer and decoder): printable bytes
/// 33-126, 161-172 and 174-255 map to themselves, the other 68 bytes to U+0100 onwards, in order.
public enum ByteLevel {
    public static let byteToScalar: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            if (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b) {
                table[b] = Unicode.Scalar(UInt32(b))!
            } else {
                table[b] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    public static let scalarToByte: [UInt32: UInt8] = {
        var m: [UInt32: UInt8] = [:]
        for (b, s) in byteToScalar.enumerated() { m[s.value] = UInt8(b) }
        return m
    }()

    /// The byte-level string of some UTF-8 bytes.
    public static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(byteToScalar[Int(b)]) }
        return String(s)
    }

    /// Bytes of a byte-level string (scalars outside the map are dropped, as in the HF decoder).
    public static func decode(_ s: String) -> [UInt8] {
        s.unicodeScalars.compactMap { scalarToByte[$0.value] }
    }
}
