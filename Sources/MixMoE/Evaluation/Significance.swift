import Foundation

/// Paired significance tests as sacreBLEU 2.x runs them (`--paired-bs`, `--paired-ar`), with the
/// same resamples: NumPy's `default_rng(seed)` stream (``NumpyPCG64``), seed 12345 unless
/// `SACREBLEU_SEED` says otherwise, statistics resampled as float32 arrays like sacreBLEU's.
public enum PairedTest: String, Sendable, CaseIterable {
    /// paired bootstrap resampling (Koehn 2004; Moses' bootstrap-hypothesis-difference-significance.pl)
    case bootstrap = "paired-bs"
    /// paired approximate randomization (Riezler and Maxwell 2005; multeval's implementation)
    case approximateRandomization = "paired-ar"

    /// sacreBLEU's defaults: 1000 resamples, 10,000 trials.
    public var defaultSamples: Int { self == .bootstrap ? 1000 : 10_000 }

    /// The seed sacreBLEU uses: `SACREBLEU_SEED`, else 12345.
    public static var defaultSeed: UInt64 {
        ProcessInfo.processInfo.environment["SACREBLEU_SEED"].flatMap { UInt64($0) } ?? 12345
    }

    /// One system's line of the result table (the baseline first, with no p-value).
    public struct SystemResult: Codable, Sendable, Equatable {
        public var name: String
        public var score: Double
        /// Bootstrap mean and half-width of the 95% interval (nil for AR without confidence resamples).
        public var mean: Double?
        public var ci: Double?
        /// Probability of a difference at least this large by chance; nil for the baseline.
        public var pValue: Double?
        enum CodingKeys: String, CodingKey { case name, score, mean, ci, pValue = "p_value" }
    }

    /// Runs the test of every system against the first (the baseline) on `metric`.
    /// `confidence` (AR only) adds bootstrap intervals from that many resamples.
    public func run(
        metric: CorpusMetric, references: [String], systems: [(name: String, hypotheses: [String])], samples: Int? = nil,
        confidence: Int = 0, seed: UInt64 = PairedTest.defaultSeed
    ) -> [SystemResult] {
        let n = samples ?? defaultSamples
        let stats = systems.map { s in zip(s.hypotheses, references).map { metric.stats($0, $1) } }
        let scores = stats.map { metric.score(Self.total($0)) }
        let segs = references.count
        // bootstrap resamples: rows of segment indices, the same rows for every system
        func resampleScores(_ st: [[Double]], _ idxs: [Int], _ count: Int) -> [Double] {
            (0..<count).map { r in metric.score(Self.total(st, idxs[(r * segs)..<((r + 1) * segs)]), float32: true) }
        }
        var out: [SystemResult] = []
        // the baseline's interval: its own resamples from a fresh generator
        let blConfidence = self == .bootstrap ? n : confidence
        var baseline = SystemResult(name: systems[0].name, score: scores[0])
        if blConfidence > 0 {
            var rng = NumpyPCG64(seed: seed)
            let (m, c) = Self.estimateCI(resampleScores(stats[0], rng.integers(below: segs, count: blConfidence * segs), blConfidence))
            baseline.mean = m; baseline.ci = c
        }
        out.append(baseline)
        for s in 1..<systems.count {
            var rng = NumpyPCG64(seed: seed)
            let diff = abs(scores[0] - scores[s])
            var r = SystemResult(name: systems[s].name, score: scores[s])
            switch self {
            case .bootstrap:
                let idxs = rng.integers(below: segs, count: n * segs)
                let bl = resampleScores(stats[0], idxs, n), sys = resampleScores(stats[s], idxs, n)
                (r.mean, r.ci) = Self.estimateCI(sys)
                let diffs = zip(sys, bl).map { abs($0 - $1) }
                let mean = diffs.reduce(0, +) / Double(n)
                r.pValue = Self.pValue(diffs.map { $0 - mean }, diff)
            case .approximateRandomization:
                let sel = rng.booleans(count: n * segs)
                let width = stats[0][0].count
                var trialDiffs: [Double] = []
                trialDiffs.reserveCapacity(n)
                for t in 0..<n {
                    var a = [Double](repeating: 0, count: width), b = a
                    for i in 0..<segs {
                        let (x, y) = sel[t * segs + i] ? (stats[0][i], stats[s][i]) : (stats[s][i], stats[0][i])
                        for k in 0..<width { a[k] += x[k]; b[k] += y[k] }
                    }
                    trialDiffs.append(abs(metric.score(a) - metric.score(b)))
                }
                r.pValue = Self.pValue(trialDiffs, diff)
                if confidence > 0 {
                    (r.mean, r.ci) = Self.estimateCI(resampleScores(stats[s], rng.integers(below: segs, count: confidence * segs), confidence))
                }
            }
            out.append(r)
        }
        return out
    }

    /// Segment statistics summed over `idx` (a resample's segments; nil = every segment).
    static func total(_ st: [[Double]], _ idx: ArraySlice<Int>? = nil) -> [Double] {
        var sum = [Double](repeating: 0, count: st.first?.count ?? 0)
        for i in idx ?? ArraySlice(st.indices) { for k in sum.indices { sum[k] += st[i][k] } }
        return sum
    }

    /// `(count(stats > real) + 1) / (n + 1)` (multeval's, as sacreBLEU computes it).
    static func pValue(_ stats: [Double], _ real: Double) -> Double {
        Double(stats.filter { $0 > real }.count + 1) / Double(stats.count + 1)
    }

    /// Mean and half-width of the 95% interval: sorted scores, bounds at n/40 from each end.
    static func estimateCI(_ scores: [Double]) -> (Double, Double) {
        let s = scores.sorted(), n = s.count
        let lo = n / 40, hi = n - lo - 1
        return (s.reduce(0, +) / Double(n), 0.5 * (s[hi] - s[lo]))
    }
}

extension PairedTest {
    /// A difference in a mean-over-directions score, with its paired bootstrap interval and p-value.
    public struct MeanDifference: Codable, Sendable, Equatable {
        /// `b - a`: the mean over seeds and directions of each direction's corpus score.
        public var delta: Double
        /// The 95% percentile interval of the resampled differences.
        public var lower: Double
        public var upper: Double
        /// sacreBLEU's p-value: absolute resampled differences, centred on their mean, that exceed
        /// the real one, `(count + 1) / (samples + 1)`.
        public var pValue: Double
        enum CodingKeys: String, CodingKey { case delta, lower, upper, pValue = "p_value" }

        /// Significant at 5% by both measures: sacreBLEU's p-value below 0.05 and a 95% interval
        /// that excludes 0. The two are different constructions and can disagree at the margin
        /// (p = 0.038 with the interval [-0.03, +0.82] in one base-strength row); a mark then
        /// needs both.
        public var significant: Bool { pValue < 0.05 && (lower > 0 || upper < 0) }
    }

    /// Paired bootstrap of the difference between two systems in the number experiment tables
    /// report: a metric averaged over directions and over each system's seeds (independent
    /// training runs translating the same test set). Every resample draws segments with
    /// replacement within each direction (stratified: each keeps its size), the same draw for
    /// every seed and both systems; draws come from NumPy's `default_rng(seed)` stream, one
    /// `choice(n_d, (samples, n_d))` per direction in order, scored from float32 statistics as
    /// sacreBLEU's paired bootstrap scores (Koehn 2004, as sacreBLEU 2.x implements it).
    /// `a[s][d]`, `b[s][d]`: seed s's hypotheses for direction d; `metrics[d]`, `references[d]`:
    /// direction d's metric and references.
    public static func meanDifference(
        metrics: [CorpusMetric], references: [[String]], a: [[[String]]], b: [[[String]]], samples: Int = 1000,
        seed: UInt64 = PairedTest.defaultSeed
    ) -> MeanDifference {
        let D = references.count, S = a.count
        precondition(S > 0 && b.count == S && a.allSatisfy { $0.count == D } && b.allSatisfy { $0.count == D }, "seeds x directions mismatch")
        func stats(_ h: [[[String]]]) -> [[[[Double]]]] {
            h.map { hs in (0..<D).map { d in zip(hs[d], references[d]).map { metrics[d].stats($0, $1) } } }
        }
        let sa = stats(a), sb = stats(b)
        let cells = Double(S * D)
        var real = 0.0
        for s in 0..<S {
            for d in 0..<D { real += metrics[d].score(total(sb[s][d], nil)) - metrics[d].score(total(sa[s][d], nil)) }
        }
        real /= cells
        var rng = NumpyPCG64(seed: seed)
        let idxs = (0..<D).map { d in rng.integers(below: max(1, references[d].count), count: samples * references[d].count) }
        var diffs: [Double] = []
        diffs.reserveCapacity(samples)
        for r in 0..<samples {
            var sum = 0.0
            for d in 0..<D {
                let n = references[d].count
                let slice = idxs[d][(r * n)..<((r + 1) * n)]
                for s in 0..<S {
                    sum += metrics[d].score(total(sb[s][d], slice), float32: true) - metrics[d].score(total(sa[s][d], slice), float32: true)
                }
            }
            diffs.append(sum / cells)
        }
        let sorted = diffs.sorted(), lo = samples / 40
        let absd = diffs.map(abs)
        let mean = absd.reduce(0, +) / Double(samples)
        return MeanDifference(
            delta: real, lower: sorted[lo], upper: sorted[samples - lo - 1], pValue: pValue(absd.map { $0 - mean }, abs(real)))
    }

    /// The p-value of ``meanDifference(metrics:references:a:b:samples:seed:)`` for one seed each.
    public static func bootstrapMean(
        metrics: [CorpusMetric], references: [[String]], a: [[String]], b: [[String]], samples: Int = 1000,
        seed: UInt64 = PairedTest.defaultSeed
    ) -> Double {
        meanDifference(metrics: metrics, references: references, a: [a], b: [b], samples: samples, seed: seed).pValue
    }
}

/// The result of one paired test, as `mixmoe score --paired-bs/--paired-ar` prints it: the test,
/// the metric, the resamples and seed, and each system against the first (the baseline).
public struct PairedTestReport: Encodable, Sendable {
    public var test, metric: String
    public var samples, seed: Int
    public var systems: [PairedTest.SystemResult]
}

extension PairedTest {
    /// Runs the test (``run(metric:references:systems:samples:confidence:seed:)``) and labels the result.
    public func report(
        metric: CorpusMetric, named name: String, references: [String], systems: [(name: String, hypotheses: [String])], samples: Int?
    ) -> PairedTestReport {
        PairedTestReport(
            test: rawValue, metric: name, samples: samples ?? defaultSamples, seed: Int(Self.defaultSeed),
            systems: run(metric: metric, references: references, systems: systems, samples: samples))
    }
}
