import Foundation

/// One line of `mixmoe bench ...`: what every measurement reports (the case, model shape, threads,
/// repetitions, median/min/max seconds, peak RSS), then the case's own fields at the same level.
/// Scripts read these lines by key (`scripts/bench/perf_tables.py`), so the keys are fixed here.
public struct BenchmarkRow<Fields: Encodable>: Encodable {
    public var name: String
    public var config: String
    public var threads: Int
    public var reps: Int
    public var medianSeconds: Double
    public var minSeconds: Double
    public var maxSeconds: Double
    public var peakRSSMiB: Double
    public var implementation = "mixmoe"
    /// The case's fields, encoded beside the common ones (not nested).
    public var fields: Fields

    enum CodingKeys: String, CodingKey {
        case name = "case"
        case config, threads, reps, implementation
        case medianSeconds = "median_s"
        case minSeconds = "min_s"
        case maxSeconds = "max_s"
        case peakRSSMiB = "peak_rss_mb"
    }

    /// A row of `times` (seconds of the timed repetitions): their median, minimum and maximum.
    public init(name: String, config: String, threads: Int, times: [Double], fields: Fields) {
        self.name = name
        self.config = config
        self.threads = threads
        self.reps = times.count
        (medianSeconds, minSeconds, maxSeconds) = summary(times)
        self.peakRSSMiB = peakResidentMiB()
        self.fields = fields
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(config, forKey: .config)
        try c.encode(threads, forKey: .threads)
        try c.encode(reps, forKey: .reps)
        try c.encode(medianSeconds, forKey: .medianSeconds)
        try c.encode(minSeconds, forKey: .minSeconds)
        try c.encode(maxSeconds, forKey: .maxSeconds)
        try c.encode(peakRSSMiB, forKey: .peakRSSMiB)
        try c.encode(implementation, forKey: .implementation)
        try fields.encode(to: encoder)
    }
}
