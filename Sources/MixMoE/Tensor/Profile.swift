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
}
