import Foundation

/// Issue 19's base-strength question: does the ordering of the methods move as the base model
/// gets stronger? From `main` reports at several base checkpoints (same data, budget and seeds),
/// the gap in mean BLEU between one variant and others, pooled over the seeds both ran, with a
/// paired bootstrap interval (``PairedTest/meanDifference(metrics:references:a:b:samples:seed:)``),
/// against the tokens each base model was pretrained on.
public enum BaseStrength {
    public struct Point: Codable, Sendable {
        /// The base model directory, as the report names it.
        public var base: String
        /// Tokens the base model was pretrained on.
        public var tokens: Double
        /// `variant - other`, e.g. "Mix-MoE - dense SFT".
        public var comparison: String
        public var seeds: Int
        public var difference: PairedTest.MeanDifference
    }

    /// One base model's `main` report with its pretraining tokens and test references.
    public struct Input {
        public var tokens: Double
        public var report: ExperimentReport.JSONReport
        public var references: [String: [String]]
        public init(tokens: Double, report: ExperimentReport.JSONReport, references: [String: [String]]) {
            self.tokens = tokens; self.report = report; self.references = references
        }

        /// Reads a `main.json` report, its base model's pretraining tokens (from its run record)
        /// and the references of its test segments.
        public init(report path: String) throws {
            let report: ExperimentReport.JSONReport
            do {
                report = try JSONDecoder().decode(ExperimentReport.JSONReport.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
            } catch {
                throw DataError.malformed(file: path, line: 0, expected: "an experiment report (\(error.localizedDescription))")
            }
            guard report.experiment == .main else {
                throw DataError.malformed(file: path, line: 0, expected: "a report of `main` (it is one of `\(report.experiment.rawValue)`)")
            }
            guard let tokens = ModelCard.pretrainingTokens(URL(fileURLWithPath: report.setup.model)) else {
                throw DataError.malformed(
                    file: path, line: 0,
                    expected: "a base model with a run.json holding data_end and seq (its pretraining tokens); \(report.setup.model) has none")
            }
            let s = report.setup
            let test = try s.test.map { try $0.map { try Corpus.readBitext($0) } } ?? CorpusFolder(URL(fileURLWithPath: s.data)).bitexts(.test)
            var refs: [String: [String]] = [:]
            for b in test { for d in b.directions { refs[d.description] = Array(b.segments(d).prefix(s.testSegments)).map(\.tgt) } }
            self.init(tokens: Double(tokens), report: report, references: refs)
        }
    }

    /// Writes `base-strength.{md,json,svg}` into `dir` for `variant` against `others`; returns the Markdown.
    public static func write(_ inputs: [Input], variant: String, others: [String], to dir: URL) throws -> String {
        let points = points(inputs, variant: variant, others: others)
        let md = markdown(points, inputs: inputs)
        try AtomicFile.write(svg(points), to: dir.appendingPathComponent("base-strength.svg"))
        try AtomicFile.writeJSON(points, to: dir.appendingPathComponent("base-strength.json"))
        try AtomicFile.write(md, to: dir.appendingPathComponent("base-strength.md"))
        return md
    }

    /// The gaps `variant - other` for every other in `others`, at every base (skipping a pair that
    /// has no seed in common or no hypotheses).
    public static func points(_ inputs: [Input], variant: String = "Mix-MoE", others: [String] = ["dense SFT", "MoE PT+SFT"]) -> [Point] {
        var out: [Point] = []
        for input in inputs.sorted(by: { $0.tokens < $1.tokens }) {
            let runs = input.report.runs
            func bySeed(_ v: String) -> [UInt64: RunResult] {
                Dictionary(runs.filter { $0.variant == v }.map { ($0.seed, $0) }, uniquingKeysWith: { a, _ in a })
            }
            let mine = bySeed(variant)
            for other in others {
                let theirs = bySeed(other)
                let seeds = Set(mine.keys).intersection(theirs.keys).sorted()
                guard let first = seeds.first else { continue }
                let dirs = mine[first]!.directions.map(\.direction).filter { input.references[$0] != nil }
                func hyps(_ r: RunResult) -> [[String]]? {
                    let h = dirs.map { d in r.directions.first { $0.direction == d }?.hypotheses }
                    return h.contains { $0 == nil } ? nil : h.map { $0! }
                }
                let a = seeds.compactMap { hyps(theirs[$0]!) }, b = seeds.compactMap { hyps(mine[$0]!) }
                guard a.count == seeds.count, b.count == seeds.count, !dirs.isEmpty else { continue }
                let metrics = Evaluation.bleuMetrics(dirs)
                let diff = PairedTest.meanDifference(metrics: metrics, references: dirs.map { input.references[$0]! }, a: a, b: b)
                out.append(
                    Point(base: input.report.setup.model, tokens: input.tokens, comparison: "\(variant) - \(other)", seeds: seeds.count, difference: diff))
            }
        }
        return out
    }

    public static func markdown(_ points: [Point], inputs: [Input]) -> String {
        var md = "# Base strength: the gap between methods against base-model pretraining\n\n"
        md += "Mean BLEU over the test directions, difference between two variants of `main` at each base checkpoint, pooled over "
        md += "the seeds both ran; 95% interval and p-value from a paired bootstrap over the test segments (1000 resamples, "
        md += "stratified by direction). † p < 0.05 and the 95% interval excludes 0.\n\n"
        // each base's own line: the bases may have been run at different rates or budgets
        for i in inputs {
            let r = i.report.setup
            md += "- `\(r.model)`: \(r.budget.stage1Steps) + \(r.budget.stage2Steps) steps of \(r.budget.shared.batchTokens) tokens, "
            md += "\(r.learningRates); \(r.testSegments) test segments per direction; data `\(r.data)`.\n"
        }
        md += "\n"
        md += "| base model | pretraining tokens | comparison | seeds | Δ BLEU | 95% CI | p |\n|---|---|---|---|---|---|---|\n"
        for p in points {
            md += String(
                format: "| `%@` | %.1f M | %@ | %d | %+.2f%@ | [%+.2f, %+.2f] | %.3f |\n", p.base, p.tokens / 1e6, p.comparison, p.seeds,
                p.difference.delta, p.difference.significant ? "†" : "", p.difference.lower, p.difference.upper, p.difference.pValue)
        }
        md += "\n![base strength](base-strength.svg)\n"
        return md
    }

    public static func svg(_ points: [Point]) -> String {
        let comparisons = points.map(\.comparison).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        let series = comparisons.map { c in
            let ps = points.filter { $0.comparison == c }
            return LineChart.Series(
                name: c, x: ps.map { $0.tokens / 1e6 }, y: ps.map(\.difference.delta), lower: ps.map(\.difference.lower),
                upper: ps.map(\.difference.upper))
        }
        return LineChart.svg(
            title: "BLEU gap against base-model pretraining (95% bootstrap intervals)", series: series,
            xLabel: "base-model pretraining tokens (M)", yLabel: "Δ mean BLEU", zeroLine: true)
    }
}
