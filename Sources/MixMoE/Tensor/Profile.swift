import Synchronization

/// Wall-clock totals per named region, for benchmark profiles (off by default; a disabled region
/// costs one branch). Only the outermost region is recorded: time inside "attention core" counts
/// there even when it calls GEMMs, so the shares are exclusive and add up to at most 1.
public enum Profile {
    /// Whether regions are timed (a benchmark's `--profile`). Atomic, like the state below: model
    /// code runs on the server's threads too.
    public static var enabled: Bool {
        get { on.load(ordering: .relaxed) }
        set { on.store(newValue, ordering: .relaxed) }
    }
    public static var totals: [String: Double] { state.withLock { $0.totals } }
    private static let on = Atomic<Bool>(false)
    /// The totals, and whether a region is open (only the outermost is recorded; a region opened
    /// while another thread's is open is not recorded either: profiles are for one driver thread).
    private static let state = Mutex<(totals: [String: Double], inside: Bool)>(([:], false))

    @inline(__always)
    public static func measure<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
        // Inside a parallel region worker threads must not touch `totals`; the region as a whole is
        // timed by whoever encloses it (e.g. "attention core").
        guard enabled && !Parallel.inRegion else { return try body() }
        let outermost = state.withLock { s in
            defer { s.inside = true }
            return !s.inside
        }
        guard outermost else { return try body() }
        let t0 = monotonicSeconds()
        defer {
            let dt = monotonicSeconds() - t0
            state.withLock { s in
                s.totals[name, default: 0] += dt
                s.inside = false
            }
        }
        return try body()
    }

    public static func reset() { state.withLock { $0.totals = [:] } }

    /// "profile: name seconds (share), ..." largest first.
    public static var report: String {
        let sum = totals.values.reduce(0, +)
        return "profile (\(String(format: "%.3f", sum)) s measured): "
            + totals.sorted { $0.value > $1.value }.map { "\($0.key) " + String(format: "%.3f s (%.0f%%)", $0.value, 100 * $0.value / max(sum, 1e-12)) }
            .joined(separator: ", ")
    }
}
