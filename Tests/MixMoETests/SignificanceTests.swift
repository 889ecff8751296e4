import Foundation
import Testing

@testable import MixMoE

/// TER and paired significance tests against sacreBLEU 2.x and NumPy on committed fixtures
/// (scripts/fixtures/make_significance_fixtures.py).
struct SignificanceTests {
    struct File: Decodable {
        struct RNG: Decodable { let integers_300: [Int]; let booleans: [Int] }
        struct TERCase: Decodable {
            let name: String, normalized: Bool, no_punct: Bool, asian_support: Bool, case_sensitive: Bool
            let hyps: [String], refs: [String], score: Double, edits: Int, ref_length: Double, signature: String
        }
        struct Sys: Decodable { let name: String; let hypotheses: [String] }
        struct Res: Decodable { let name: String; let score: Double; let mean: Double?; let ci: Double?; let p_value: Double? }
        struct Result: Decodable { let test: String; let metric: String; let samples: Int; let systems: [Res] }
        struct Paired: Decodable { let references: [String]; let systems: [Sys]; let results: [Result] }
        let rng: RNG, ter: [TERCase], paired: Paired
    }
    static let file: File = try! JSONDecoder().decode(
        File.self, from: Data(contentsOf: fixtures.appendingPathComponent("significance/sacrebleu.json")))

    /// NumPy's default_rng(12345): the same bounded integers and booleans.
    @Test func numpyGeneratorStream() {
        var a = NumpyPCG64(seed: 12345)
        #expect(a.integers(below: 300, count: 40) == Self.file.rng.integers_300)
        var b = NumpyPCG64(seed: 12345)
        #expect(b.booleans(count: 40).map { $0 ? 1 : 0 } == Self.file.rng.booleans)
    }

    /// Corpus TER under every option combination: edits and reference length exactly, score to 0.01.
    @Test func terMatchesSacreBLEU() {
        for c in Self.file.ter {
            let o = TEROptions(normalized: c.normalized, noPunct: c.no_punct, asianSupport: c.asian_support, caseSensitive: c.case_sensitive)
            let m = CorpusMetric(.ter, ter: o)
            var st = [0.0, 0.0]
            for (h, r) in zip(c.hyps, c.refs) { let x = m.stats(h, r); st[0] += x[0]; st[1] += x[1] }
            let what = "\(c.name) norm \(c.normalized) nopunct \(c.no_punct) asian \(c.asian_support) case \(c.case_sensitive)"
            #expect(Int(st[0]) == c.edits, "\(what): edits \(st[0]) vs \(c.edits)")
            #expect(st[1] == c.ref_length, "\(what): ref length \(st[1]) vs \(c.ref_length)")
            #expect(abs(m.score(hypotheses: c.hyps, references: c.refs).score - c.score) < 0.01, "\(what)")
            let sig = m.score(hypotheses: c.hyps, references: c.refs).signature.replacingOccurrences(of: "|version:mixmoe", with: "")
            #expect(c.signature.hasPrefix(sig), "\(what): \(sig) vs \(c.signature)")
        }
    }

    /// Paired bootstrap and approximate randomization, 3 systems x 300 segments, BLEU / chrF / TER:
    /// identical p-values; means and intervals within 1e-4 (sacreBLEU averages float32 arrays).
    @Test(arguments: ["bs", "ar"], ["bleu", "chrf", "ter"])
    func pairedTestsMatchSacreBLEU(test: String, metric: String) throws {
        let p = Self.file.paired
        let want = try #require(p.results.first { $0.test == test && $0.metric == metric })
        let m = CorpusMetric(try #require(MetricName(rawValue: metric)))
        let got = (test == "bs" ? PairedTest.bootstrap : .approximateRandomization).run(
            metric: m, references: p.references, systems: p.systems.map { ($0.name, $0.hypotheses) }, samples: want.samples, seed: 12345)
        #expect(got.count == want.systems.count)
        for (g, w) in zip(got, want.systems) {
            let what = "\(test) \(metric) \(w.name)"
            #expect(abs(g.score - w.score) < 1e-6, "\(what): score \(g.score) vs \(w.score)")
            #expect(g.pValue == w.p_value, "\(what): p \(String(describing: g.pValue)) vs \(String(describing: w.p_value))")
            #expect((g.mean == nil) == (w.mean == nil) && (g.ci == nil) == (w.ci == nil), "\(what)")
            if let gm = g.mean, let wm = w.mean { #expect(abs(gm - wm) < 1e-4, "\(what): mean \(gm) vs \(wm)") }
            if let gc = g.ci, let wc = w.ci { #expect(abs(gc - wc) < 1e-4, "\(what): ci \(gc) vs \(wc)") }
        }
    }
}

/// The experiments' stratified, seed-pooled paired bootstrap of a mean-over-directions BLEU
/// difference against an independent NumPy + sacreBLEU implementation
/// (scripts/fixtures/make_stratified_bootstrap_fixture.py): the same real difference, interval and p-value.
struct StratifiedBootstrapTests {
    struct File: Decodable {
        struct Direction: Decodable { let direction: String; let tokenize: String; let references: [String] }
        struct Result: Decodable { let delta: Double; let lower: Double; let upper: Double; let p_value: Double }
        struct Case: Decodable { let name: String; let a: [[[String]]]; let b: [[[String]]]; let two_seeds: Result; let first_seed: Result }
        let samples: Int, seed: UInt64, directions: [Direction], cases: [Case]
    }
    static let file: File = try! JSONDecoder().decode(
        File.self, from: Data(contentsOf: fixtures.appendingPathComponent("significance/stratified.json")))

    @Test(arguments: ["clear", "close"], [2, 1])
    func matchesNumPyAndSacreBLEU(name: String, seeds: Int) throws {
        let f = Self.file
        let c = try #require(f.cases.first { $0.name == name })
        let metrics = try f.directions.map { CorpusMetric(.bleu, tokenize: try #require(SacreTokenizer(rawValue: $0.tokenize))) }
        let got = PairedTest.meanDifference(
            metrics: metrics, references: f.directions.map(\.references), a: Array(c.a.prefix(seeds)), b: Array(c.b.prefix(seeds)),
            samples: f.samples, seed: f.seed)
        let want = seeds == 2 ? c.two_seeds : c.first_seed
        #expect(abs(got.delta - want.delta) < 1e-9, "delta \(got.delta) vs \(want.delta)")
        #expect(abs(got.lower - want.lower) < 1e-4, "lower \(got.lower) vs \(want.lower)")
        #expect(abs(got.upper - want.upper) < 1e-4, "upper \(got.upper) vs \(want.upper)")
        #expect(got.pValue == want.p_value, "p \(got.pValue) vs \(want.p_value)")
        if seeds == 1 {
            #expect(
                PairedTest.bootstrapMean(metrics: metrics, references: f.directions.map(\.references), a: c.a[0], b: c.b[0]) == want.p_value)
        }
    }
}

/// The experiment report's significance marks on clear-cut synthetic runs: a system that outputs
/// the references differs from one that outputs unrelated words in every direction and on the mean;
/// identical outputs are never marked.
struct ReportSignificanceTests {
    func run(_ variant: String, _ hyps: [String: [String]], _ refs: [String: [String]]) -> RunResult {
        let dirs = hyps.keys.sorted().map { d in
            DirectionResult(
                direction: d, segments: hyps[d]!.count,
                bleu: Metrics.bleu(hypotheses: hyps[d]!, references: refs[d]!).score, chrf: 0, chrfpp: 0,
                seconds: 0, bleuSignature: "", hypotheses: hyps[d])
        }
        return RunResult(variant: variant, seed: 0, directions: dirs, trainSeconds: 0)
    }

    /// Three runs labelled `labels`: the references themselves, unrelated words, the references
    /// again; with their marks.
    func clearCut(_ labels: [String]) -> (results: [RunResult], marks: [String: ExperimentReport.Marks], references: [String: [String]]) {
        let refs = SignificanceTests.file.paired.references
        let references = ["de-en": Array(refs[0..<100]), "fi-en": Array(refs[100..<200])]
        let garbage = references.mapValues { $0.map { _ in "zzz qqq" } }
        let results = [run(labels[0], references, references), run(labels[1], garbage, references), run(labels[2], references, references)]
        return (results, ExperimentReport.significance(results: results, variants: labels, references: references), references)
    }

    @Test func clearDifferencesAreMarkedIdenticalOutputsAreNot() {
        let (_, marks, _) = clearCut(["dense SFT", "broken", "copy"])
        #expect(marks["dense SFT"]?.isBest == true || marks["copy"]?.isBest == true)
        #expect(marks["broken"]?.mean == "†‡")
        #expect(marks["broken"]?.directions == ["de-en": "†‡", "fi-en": "†‡"])
        #expect(marks["copy"]?.mean == "" && marks["copy"]?.directions.isEmpty == true)
    }

    /// An experiment without dense SFT (e.g. `topk`) takes its first variant as the reference:
    /// the broken system is marked against it, with a Δ of exactly minus the reference's BLEU
    /// (100 for outputs equal to the references, 0 for unrelated words), and the report says so.
    @Test func firstVariantIsTheReferenceWithoutDenseSFT() {
        let (results, marks, references) = clearCut(["top-1", "top-2", "top-4"])
        #expect(marks["top-1"]?.isReference == true && marks["top-1"]?.vsReference == nil)
        #expect(marks["top-2"]?.mean == "†‡")
        #expect(abs((marks["top-2"]?.vsReference?.delta ?? 0) + 100) < 1e-9, "the mean of two directions' BLEU: 1e-14 rounding")
        #expect(marks["top-4"]?.mean == "" && marks["top-4"]?.vsReference?.delta == 0)
        let md = ExperimentReport.markdown(
            name: .topk, results: results,
            setup: ExperimentSetup(data: "d", model: "m", budget: Budget(), testSegments: 100, monoBytes: 0, test: nil, seeds: [0]),
            wall: 0, references: references)
        #expect(md.contains("† differs from top-1 (the reference") && md.contains("| Δ top-1 [95% CI] |"))
        #expect(md.contains("| top-2 | 1 | — | 0.00†‡ | -100.00 ["))
    }
}

/// The base-strength study on synthetic reports with closed-form gaps: a variant that outputs the
/// references scores BLEU 100 against 0 for unrelated words, so the gap is exactly +100 (and
/// significant), at every base, in order of pretraining tokens; identical outputs give exactly 0.
struct BaseStrengthTests {
    @Test func closedFormGaps() throws {
        let refs = SignificanceTests.file.paired.references
        let references = ["de-en": Array(refs[0..<60]), "fi-en": Array(refs[60..<120])]
        let garbage = references.mapValues { $0.map { _ in "zzz qqq" } }
        func run(_ v: String, _ seed: UInt64, _ hyps: [String: [String]]) -> RunResult {
            let dirs = hyps.keys.sorted().map { d in
                DirectionResult(
                    direction: d, segments: hyps[d]!.count, bleu: Metrics.bleu(hypotheses: hyps[d]!, references: references[d]!).score,
                    chrf: 0, chrfpp: 0, seconds: 0, bleuSignature: "", hypotheses: hyps[d])
            }
            return RunResult(variant: v, seed: seed, directions: dirs, trainSeconds: 0)
        }
        func report(_ model: String) -> ExperimentReport.JSONReport {
            let runs = [0, 1].flatMap { s in
                [run("Mix-MoE", UInt64(s), references), run("dense SFT", UInt64(s), garbage), run("MoE PT+SFT", UInt64(s), references)]
            }
            return ExperimentReport.JSONReport(
                experiment: .main,
                setup: ExperimentSetup(data: "d", model: model, budget: Budget(), testSegments: 60, monoBytes: 0, test: nil, seeds: [0, 1]),
                wallTimeSeconds: 0, runs: runs)
        }
        let points = BaseStrength.points([
            .init(tokens: 36e6, report: report("c4"), references: references), .init(tokens: 20e6, report: report("c2"), references: references),
        ])
        #expect(points.map(\.base) == ["c2", "c2", "c4", "c4"])
        for p in points {
            #expect(p.seeds == 2)
            if p.comparison == "Mix-MoE - dense SFT" {
                #expect(abs(p.difference.delta - 100) < 1e-9 && p.difference.pValue < 0.05, "\(p)")
            } else {
                #expect(p.comparison == "Mix-MoE - MoE PT+SFT" && p.difference.delta == 0 && p.difference.lower == 0 && p.difference.upper == 0)
            }
        }
        let svg = BaseStrength.svg(points)
        #expect(svg.contains("Mix-MoE - dense SFT") && svg.contains("<polyline"))
    }
}

/// TER on 1000 random short segments against sacreBLEU (scripts/fixtures/make_ter_shift_fixture.py),
/// including the shifts whose slices run past the end of the hypothesis (Python clamps them; an
/// evaluation once crashed there): every segment's edits and reference length, and the corpus score.
struct TERShiftTests {
    struct File: Decodable {
        struct Case: Decodable { let hyp: String, ref: String, edits: Double, ref_length: Double, clamped: Bool }
        let cases: [Case], corpus_score: Double
    }

    @Test func randomSegmentsMatchSacreBLEU() throws {
        let f = try JSONDecoder().decode(
            File.self, from: Data(contentsOf: fixtures.appendingPathComponent("significance/ter_random.json")))
        #expect(f.cases.filter(\.clamped).count >= 10, "the fixture exercises the clamped shift")
        let m = CorpusMetric(.ter)
        for c in f.cases {
            let st = m.stats(c.hyp, c.ref)
            #expect(st[0] == c.edits && st[1] == c.ref_length, "\(c.hyp) | \(c.ref): \(st) vs \(c.edits), \(c.ref_length)")
        }
        let score = m.score(hypotheses: f.cases.map(\.hyp), references: f.cases.map(\.ref))
        #expect(abs(score.score - f.corpus_score) < 1e-9, "corpus TER \(score.score) vs \(f.corpus_score)")
    }
}

/// A mark needs both measures (closed-form cases): the committed base-strength row with p = 0.038
/// and the interval [-0.03, +0.82] is not significant; intervals that exclude 0 with p < 0.05 are,
/// on either side of 0; p at 0.05 is not.
@Test(arguments: [
    (0.40, -0.03, 0.82, 0.038, false), (0.40, 0.05, 0.82, 0.038, true), (-0.44, -0.71, -0.21, 0.001, true),
    (0.40, 0.05, 0.82, 0.05, false), (0.12, -0.14, 0.38, 0.11, false),
])
func significanceNeedsThePValueAndTheInterval(delta: Double, lower: Double, upper: Double, p: Double, expected: Bool) {
    #expect(PairedTest.MeanDifference(delta: delta, lower: lower, upper: upper, pValue: p).significant == expected)
}
