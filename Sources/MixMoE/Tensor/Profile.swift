/// Wall-clock totals per named region, for benchmark profiles (off by default; a disabled region
/// costs one branch). Regions nest freely; each total is inclusive of what it encloses.
public enum Profile {
    nonisolated(unsafe) public static var enabled = false
    nonisolated(unsafe) public private(set) static var totals: [String: Double] = [:]

    @inline(__always)
    public static func measure<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
        // Inside a parallel region worker threads must not touch `totals`; the region as a whole is
        // timed by whoever encloses it (e.g. "attention core").
        guard enabled && !Parallel.inRegion else { return try body() }
        let t0 = monotonicSeconds()
        defer { totals[name, default: 0] += monotonicSeconds() - t0 }
        return try body()
    }

    public static func reset() { totals = [:] }
}
