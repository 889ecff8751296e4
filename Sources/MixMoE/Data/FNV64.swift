import Foundation

/// FNV-1a 64-bit streaming hash. Used for cache keys, where a collision would need identical
/// lengths and adversarial inputs; not a security boundary.
public struct FNV64: Sendable {
    public private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325
    public init() {}

    public mutating func add(bytes: UnsafeRawBufferPointer) {
        var h = value
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        value = h
    }
    public mutating func add<T: BitwiseCopyable>(_ xs: [T]) {
        add(xs.count)
        xs.withUnsafeBytes { add(bytes: $0) }
    }
    public mutating func add(_ n: Int) { withUnsafeBytes(of: n.littleEndian) { add(bytes: $0) } }
    public mutating func add(_ s: String) { add(Array(s.utf8)) }
    public var hex: String { String(format: "%016llx", value) }
}

extension FNV64 {
    /// FNV-1a 64 of a file, hex. Read in 16 MB pieces: hashing a 5 GB checkpoint must not make it
    /// resident.
    public static func file(_ url: URL) throws -> String {
        let f = try FileHandle(forReadingFrom: url)
        defer { try? f.close() }
        var h = FNV64()
        while let d = try f.read(upToCount: 16 << 20), !d.isEmpty { d.withUnsafeBytes { h.add(bytes: $0) } }
        return h.hex
    }
}
