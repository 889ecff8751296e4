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

    /// A row of `times` (seconds of the timed repetitions): their median, minimum and maximum;
    /// `fields` builds the case's fields from the median.
    public init(name: String, config: String, threads: Int, times: [Double], fields: (Double) -> Fields) {
        self.name = name
        self.config = config
        self.threads = threads
        self.reps = times.count
        (medianSeconds, minSeconds, maxSeconds) = summary(times)
        self.peakRSSMiB = peakResidentMiB()
        self.fields = fields(medianSeconds)
    }

    public func encode(to encoder: any Encoder) throws {
        try Common(row: self).encode(to: encoder)
        try fields.encode(to: encoder)
    }

    /// The common fields, encoded by the compiler beside the case's own.
    private struct Common: Encodable {
        var name, config, implementation: String
        var threads, reps: Int
        var medianSeconds, minSeconds, maxSeconds, peakRSSMiB: Double
        typealias CodingKeys = BenchmarkRow.CodingKeys
        init(row r: BenchmarkRow) {
            (name, config, implementation, threads, reps) = (r.name, r.config, r.implementation, r.threads, r.reps)
            (medianSeconds, minSeconds, maxSeconds, peakRSSMiB) = (r.medianSeconds, r.minSeconds, r.maxSeconds, r.peakRSSMiB)
        }
    }
}
