/// Wall-clock totals per named region, for benchmark profiles (off by default; a disabled region
/// costs one branch). Only the outermost region is recorded: time inside "attention core" counts
/// there even when it calls GEMMs, so the shares are exclusive and add up to at most 1.
public enum Profile {
    nonisolated(unsafe) public static var enabled = false
    nonisolated(unsafe) public private(set) static var totals: [String: Double] = [:]

    @inline(__always)
    public static func measure<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
        // Inside a parallel region worker threads must not touch `totals`; the region as a whole is
        // timed by whoever encloses it (e.g. "attention core").
        guard enabled && !Parallel.inRegion && !inside else { return try body() }
        inside = true
        let t0 = monotonicSeconds()
        defer { totals[name, default: 0] += monotonicSeconds() - t0; inside = false }
        return try body()
    }

    nonisolated(unsafe) static var inside = false

    public static func reset() { totals = [:] }

    /// "profile: name seconds (share), ..." largest first.
    public static var report: String {
        let sum = totals.values.reduce(0, +)
        return "profile (\(String(format: "%.3f", sum)) s measured): "
            + totals.sorted { $0.value > $1.value }.map { "\($0.key) " + String(format: "%.3f s (%.0f%%)", $0.value, 100 * $0.value / max(sum, 1e-12)) }
            .joined(separator: ", ")
    }
}
