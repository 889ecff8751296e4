import Foundation
import Testing

@testable import MixMoE

/// BLEU (every tokenizer), chrF and chrF++ against sacreBLEU 2.x on committed fixtures
/// (scripts/fixtures/make_bleu_fixtures.py): edge cases and real corpora from the shared data.
struct MetricsTests {
    struct Case: Decodable {
        let name: String; let hyps: [String]; let refs: [String]
        let bleu: [String: Double]; let chrf: Double; let chrfpp: Double; let signatures: [String: String]
        enum CodingKeys: String, CodingKey { case name, hyps, refs, bleu, chrf, chrfpp = "chrf++", signatures }
    }
    struct File: Decodable { let sacrebleu_version: String; let cases: [Case] }

    static let file: File = try! JSONDecoder().decode(File.self, from: Data(contentsOf: fixtures.appendingPathComponent("bleu/sacrebleu.json")))

    func withoutVersion(_ s: String) -> String { s.split(separator: "|").filter { !$0.hasPrefix("version:") }.joined(separator: "|") }

    @Test(arguments: SacreTokenizer.allCases)
    func bleuMatchesSacreBLEU(_ tok: SacreTokenizer) {
        for c in Self.file.cases {
            let s = Metrics.bleu(hypotheses: c.hyps, references: c.refs, tokenize: tok)
            #expect(abs(s.score - c.bleu[tok.rawValue]!) < 0.01, "\(c.name) tok \(tok.rawValue): \(s.score) vs \(c.bleu[tok.rawValue]!)")
            #expect(withoutVersion(s.signature) == withoutVersion(c.signatures["bleu:" + tok.rawValue]!))
        }
    }

    @Test func chrfMatchesSacreBLEU() {
        for c in Self.file.cases {
            let a = Metrics.chrf(hypotheses: c.hyps, references: c.refs, wordOrder: 0)
            let b = Metrics.chrf(hypotheses: c.hyps, references: c.refs, wordOrder: 2)
            #expect(abs(a.score - c.chrf) < 0.01, "\(c.name) chrF \(a.score) vs \(c.chrf)")
            #expect(abs(b.score - c.chrfpp) < 0.01, "\(c.name) chrF++ \(b.score) vs \(c.chrfpp)")
            #expect(withoutVersion(a.signature) == withoutVersion(c.signatures["chrf"]!))
            #expect(withoutVersion(b.signature) == withoutVersion(c.signatures["chrf++"]!))
        }
    }

    /// Exact identities on the fixtures' real references: a system that outputs the references
    /// scores 100 in BLEU and chrF and 0 in TER (an error rate); an empty system the opposite.
    @Test(arguments: [MetricName.bleu, .chrf, .chrfpp, .ter])
    func referencesScore100EmptyScores0(_ metric: MetricName) throws {
        let refs = try #require(Self.file.cases.first { $0.name.hasPrefix("real-") && $0.refs.count >= 1000 }).refs
        let (perfect, empty): (Double, Double) = metric == .ter ? (0, 100) : (100, 0)
        #expect(abs(metric.score(hypotheses: refs, references: refs).score - perfect) < 1e-9)
        #expect(metric.score(hypotheses: refs.map { _ in "" }, references: refs).score == empty)
    }
}

/// The per-direction report table: every row has the header's columns, each value under its
/// header (a row once left METEOR out, so the time stood under METEOR).
@Test func evaluationTableColumnsLineUp() {
    func r(_ d: String, meteor: Double?) -> DirectionResult {
        DirectionResult(
            direction: d, segments: 3, bleu: 12.5, chrf: 40.25, chrfpp: 38.5, ter: 71.0, meteor: meteor, seconds: 9.5,
            bleuSignature: "sig", hypotheses: nil)
    }
    let lines = Evaluation.markdown([r("de-en", meteor: 0.25), r("en-de", meteor: nil)]).split(separator: "\n").map(String.init)
    func cells(_ l: String) -> [String] { l.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) } }
    let header = cells(lines[0])
    #expect(header == ["direction", "segments", "BLEU", "chrF", "chrF++", "TER", "METEOR", "time (s)"])
    let rows = lines.dropFirst(2).map(cells)
    #expect(rows.count == 3)
    for row in rows { #expect(row.count == header.count, "\(row)") }
    #expect(rows[0] == ["de-en", "3", "12.50", "40.25", "38.50", "71.00", "0.2500", "9.5"])
    #expect(rows[1][6] == "—" && rows[1][7] == "9.5")
    #expect(rows[2][6] == "—", "a mean over directions with a missing METEOR is no mean")
}

/// A loss curve's axis labels: five ticks evenly spread over the data itself (1 + 499 i / 4,
/// rounded for integer steps), none at the padded plot edges (which once read "step -49").
@Test func lossChartTicksSpanTheData() throws {
    let x = (1...500).map(Double.init), y = x.map { 3 + 1 / $0 }
    let svg = LineChart.svg(title: "loss", x: x, y: y, xLabel: "step", yLabel: "loss")
    let labels = try Regex(#"text-anchor="middle">([^<]+)</text>"#)
    let xTicks = svg.matches(of: labels).map { String($0.output[1].substring!) }.filter { Double($0) != nil }
    #expect(xTicks == ["1", "126", "251", "375", "500"])
    let yLabels = try Regex(#"text-anchor="end">([^<]+)</text>"#)
    let yTicks = svg.matches(of: yLabels).compactMap { Double($0.output[1].substring!) }
    #expect(yTicks.first == 3.00 && yTicks.last == 4.00, "\(yTicks)")  // 3 + 1/500 and 3 + 1/1, to 2 decimals
}
