import Foundation
import Testing

@testable import MixMoE

/// The bandwidth benchmark's kernel reads every value once: its sum of a buffer holding
/// `i & 1023` equals the closed form (n / 1024) * (0 + 1 + ... + 1023), within float rounding.
@Test func memoryBandwidthSweepSumsEveryValue() {
    let m = MemoryBandwidth(mib: 4)
    m.sweep()
    let n = Double(m.bytes / 4)
    let exact = n / 1024 * 523_776
    #expect(abs(Double(m.checksum) - exact) <= 1e-5 * exact, "\(m.checksum) vs \(exact)")
}
