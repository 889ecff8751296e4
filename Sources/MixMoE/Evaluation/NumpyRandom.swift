import Foundation

/// NumPy's `default_rng(seed)` stream, reproduced so that significance tests draw exactly the
/// resamples sacreBLEU draws: `SeedSequence(seed)` -> PCG64 (`pcg_setseq_128_xsl_rr_64`), and
/// NumPy's bounded-integer algorithms (Lemire's method on 32-bit draws for `integers` / `choice`
/// with replacement; one bit per draw from a 32-bit buffer for booleans). References: NumPy's
/// `bit_generator.pyx` (SeedSequence), `pcg64.h`, `distributions.c`.
public struct NumpyPCG64: Sendable {
    // 128-bit state and increment as (high, low) halves
    var stateHi: UInt64, stateLo: UInt64, incHi: UInt64, incLo: UInt64
    var hasUInt32 = false
    var uinteger: UInt32 = 0

    static let multHi: UInt64 = 0x2360_ED05_1FC6_5DA4, multLo: UInt64 = 0x4385_DF64_9FCC_F645

    /// `np.random.default_rng(seed)`.
    public init(seed: UInt64) {
        let w = NumpyPCG64.seedSequence(seed, words64: 4)
        stateHi = 0; stateLo = 0
        // inc = (initseq << 1) | 1 with initseq = (w[2] << 64) | w[3]
        incHi = (w[2] << 1) | (w[3] >> 63); incLo = (w[3] << 1) | 1
        step()
        let (lo, carry) = stateLo.addingReportingOverflow(w[1])
        stateLo = lo; stateHi = stateHi &+ w[0] &+ (carry ? 1 : 0)
        step()
    }

    /// SeedSequence(entropy).generate_state(n, uint64) for a non-negative integer entropy.
    static func seedSequence(_ seed: UInt64, words64: Int) -> [UInt64] {
        let initA: UInt32 = 0x43B0_D7E5, multA: UInt32 = 0x931E_8875, initB: UInt32 = 0x8B51_F9DD, multB: UInt32 = 0x58F3_8DED
        let mixL: UInt32 = 0xCA01_F9DD, mixR: UInt32 = 0x4973_F715
        var entropy: [UInt32] = []
        var s = seed
        repeat { entropy.append(UInt32(truncatingIfNeeded: s)); s >>= 32 } while s > 0
        var hashConst = initA
        func hashmix(_ v: UInt32) -> UInt32 {
            var value = v ^ hashConst
            hashConst = hashConst &* multA
            value = value &* hashConst
            return value ^ (value >> 16)
        }
        func mix(_ x: UInt32, _ y: UInt32) -> UInt32 {
            let r = (mixL &* x) &- (mixR &* y)
            return r ^ (r >> 16)
        }
        var pool = (0..<4).map { hashmix($0 < entropy.count ? entropy[$0] : 0) }
        for src in 0..<4 { for dst in 0..<4 where src != dst { pool[dst] = mix(pool[dst], hashmix(pool[src])) } }
        for src in 4..<max(4, entropy.count) { for dst in 0..<4 { pool[dst] = mix(pool[dst], hashmix(entropy[src])) } }
        var hashB = initB
        var words32: [UInt32] = []
        for i in 0..<(2 * words64) {
            var v = pool[i % 4] ^ hashB
            hashB = hashB &* multB
            v = v &* hashB
            words32.append(v ^ (v >> 16))
        }
        return (0..<words64).map { UInt64(words32[2 * $0]) | (UInt64(words32[2 * $0 + 1]) << 32) }
    }

    /// state = state * MULT + inc (mod 2^128)
    mutating func step() {
        let (p1, p0) = stateLo.multipliedFullWidth(by: NumpyPCG64.multLo)
        let hi = p1 &+ stateHi &* NumpyPCG64.multLo &+ stateLo &* NumpyPCG64.multHi
        let (lo, carry) = p0.addingReportingOverflow(incLo)
        stateLo = lo
        stateHi = hi &+ incHi &+ (carry ? 1 : 0)
    }

    /// XSL-RR output of the stepped state.
    public mutating func next64() -> UInt64 {
        step()
        let x = stateHi ^ stateLo, rot = stateHi >> 58
        return (x >> rot) | (x << ((64 - rot) & 63))
    }

    /// Low half of a 64-bit draw, then its high half.
    public mutating func next32() -> UInt32 {
        if hasUInt32 { hasUInt32 = false; return uinteger }
        let n = next64()
        hasUInt32 = true
        uinteger = UInt32(truncatingIfNeeded: n >> 32)
        return UInt32(truncatingIfNeeded: n)
    }

    /// `rng.integers(0, n, size=count)` / `rng.choice(n, size=count)` for n <= 2^32: Lemire's
    /// method on 32-bit draws.
    public mutating func integers(below n: Int, count: Int) -> [Int] {
        precondition(n >= 1 && UInt64(n) <= 0x1_0000_0000, "range must fit 32 bits")
        if n == 1 { return Array(repeating: 0, count: count) }
        let rng = UInt32(n - 1)
        return (0..<count).map { _ in
            if rng == UInt32.max { return Int(next32()) }
            let excl = rng &+ 1
            var m = UInt64(next32()) * UInt64(excl)
            var leftover = UInt32(truncatingIfNeeded: m)
            if leftover < excl {
                let threshold = (UInt32.max - rng) % excl
                while leftover < threshold {
                    m = UInt64(next32()) * UInt64(excl)
                    leftover = UInt32(truncatingIfNeeded: m)
                }
            }
            return Int(m >> 32)
        }
    }

    /// `rng.integers(2, size=count, dtype=bool)`: one bit per value from a 32-bit buffer.
    public mutating func booleans(count: Int) -> [Bool] {
        var buf: UInt32 = 0, bcnt = 0
        return (0..<count).map { _ in
            if bcnt == 0 { buf = next32(); bcnt = 31 } else { buf >>= 1; bcnt -= 1 }
            return buf & 1 != 0
        }
    }
}
