import Foundation

/// A one-line progress bar with an ETA on stderr, drawn only when stderr is a terminal.
public struct ProgressBar: Sendable {
    public let enabled: Bool
    private let start = monotonicSeconds()
    public init(enabled: Bool = isatty(STDERR_FILENO) != 0) { self.enabled = enabled }

    public func update(_ label: String, _ done: Int, _ total: Int) {
        guard enabled, total > 0 else { return }
        let w = 30, k = w * done / total
        let el = monotonicSeconds() - start
        let eta = done > 0 ? formatDuration(el / Double(done) * Double(total - done)) : "?"
        FileHandle.standardError.write(
            Data("\r\(label) [\(String(repeating: "=", count: k))\(String(repeating: " ", count: w - k))] \(done)/\(total) ETA \(eta) ".utf8))
        if done == total { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

/// "1h05m" / "3m07s".
public func formatDuration(_ s: Double) -> String {
    guard s.isFinite else { return "?" }
    let t = Int(s.rounded())
    return t >= 3600 ? String(format: "%dh%02dm", t / 3600, (t % 3600) / 60) : String(format: "%dm%02ds", t / 60, t % 60)
}
