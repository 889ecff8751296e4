import Foundation

/// Monotonic wall-clock seconds.
public func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Peak resident set size of this process in MiB (VmHWM from /proc/self/status).
public func peakResidentMiB() -> Double {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return .nan }
    for line in s.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let kb = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first.flatMap { Double($0) }
        return (kb ?? .nan) / 1024
    }
    return .nan
}

/// Median, min, max of a sample.
public func summary(_ xs: [Double]) -> (median: Double, min: Double, max: Double) {
    let s = xs.sorted()
    let med = s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    return (med, s.first ?? .nan, s.last ?? .nan)
}
