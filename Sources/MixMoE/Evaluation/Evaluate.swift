import Foundation

/// Scores of one translation direction.
public struct DirectionResult: Codable, Sendable {
    public var direction: String
    public var segments: Int
    public var bleu: Double
    public var chrf: Double
    public var chrfpp: Double
    /// TER (sacreBLEU's defaults: lower-cased, Tercom tokenisation); nil in results written before it existed.
    public var ter: Double?
    /// METEOR (NLTK's, in [0, 1]); nil when WordNet was not available or for older results.
    public var meteor: Double?
    public var seconds: Double
    public var bleuSignature: String
    /// The translations, kept when asked (experiments test differences between methods on them).
    public var hypotheses: [String]?

    enum CodingKeys: String, CodingKey {
        case direction, segments, bleu, chrf, chrfpp = "chrf++", ter, meteor, seconds, bleuSignature = "bleu_signature", hypotheses
    }
}

public enum Evaluation {
    /// BLEU tokenizer for a target language: `zh` for Chinese (sacreBLEU's default), else `13a`.
    public static func bleuTokenizer(target: String) -> SacreTokenizer { target == "zh" ? .zh : .t13a }

    /// The BLEU metric of each direction label ("de-en"), tokenised for its target language.
    public static func bleuMetrics(_ directions: [String]) -> [CorpusMetric] {
        directions.map { CorpusMetric(.bleu, tokenize: bleuTokenizer(target: String($0.split(separator: "-").last ?? ""))) }
    }

    /// Translates every wanted direction of `bitexts` and scores it. Hypotheses are written to
    /// `hypDir/hyp.SRC-TGT.txt` when given.
    public static func run(
        _ translator: Translator, bitexts: [Bitext], directions: Set<Direction>? = nil,
        maxSegments: Int? = nil, hypDir: URL? = nil, meteor: Meteor? = nil, keepHypotheses: Bool = false,
        progress: ((Direction, Int, Int) -> Void)? = nil
    ) throws -> [DirectionResult] {
        var results: [DirectionResult] = []
        for b in bitexts {
            for d in b.directions where directions == nil || directions!.contains(d) {
                var segs = b.segments(d)
                if let m = maxSegments { segs = Array(segs.prefix(m)) }
                let t0 = monotonicSeconds()
                let hyps = try translator.translate(segs.map(\.src), d) { progress?(d, $0, segs.count) }
                let secs = monotonicSeconds() - t0
                let refs = segs.map(\.tgt)
                let bleu = Metrics.bleu(hypotheses: hyps, references: refs, tokenize: bleuTokenizer(target: d.tgt))
                results.append(
                    DirectionResult(
                        direction: d.description, segments: segs.count, bleu: bleu.score,
                        chrf: Metrics.chrf(hypotheses: hyps, references: refs).score,
                        chrfpp: Metrics.chrf(hypotheses: hyps, references: refs, wordOrder: 2).score,
                        ter: CorpusMetric(.ter).score(hypotheses: hyps, references: refs).score,
                        meteor: meteor.map { CorpusMetric(.meteor, meteor: $0).score(hypotheses: hyps, references: refs).score },
                        seconds: secs, bleuSignature: bleu.signature, hypotheses: keepHypotheses ? hyps : nil))
                if let hypDir {
                    try AtomicFile.write(hyps.joined(separator: "\n") + "\n", to: hypDir.appendingPathComponent("hyp.\(d).txt"))
                }
            }
        }
        return results
    }

    /// A Markdown table of results with a mean row.
    public static func markdown(_ rs: [DirectionResult]) -> String {
        var s = "| direction | segments | BLEU | chrF | chrF++ | TER | METEOR | time (s) |\n|---|---|---|---|---|---|---|---|\n"
        for r in rs {
            s += String(
                format: "| %@ | %d | %.2f | %.2f | %.2f | %@ | %@ | %.1f |\n", r.direction, r.segments, r.bleu, r.chrf, r.chrfpp,
                r.ter.map { String(format: "%.2f", $0) } ?? "—", r.meteor.map { String(format: "%.4f", $0) } ?? "—", r.seconds)
        }
        if rs.count > 1 {
            let n = Double(rs.count)
            let ters = rs.compactMap(\.ter)
            let ter = ters.count == rs.count ? String(format: "%.2f", ters.reduce(0, +) / n) : "—"
            let meteors = rs.compactMap(\.meteor)
            let meteor = meteors.count == rs.count ? String(format: "%.4f", meteors.reduce(0, +) / n) : "—"
            s += String(
                format: "| **mean** | %d | %.2f | %.2f | %.2f | %@ | %@ | %.1f |\n", rs.reduce(0) { $0 + $1.segments },
                rs.reduce(0) { $0 + $1.bleu } / n, rs.reduce(0) { $0 + $1.chrf } / n,
                rs.reduce(0) { $0 + $1.chrfpp } / n, ter, meteor, rs.reduce(0) { $0 + $1.seconds })
        }
        return s
    }
}

extension Evaluation {
    /// `hypotheses` read from `file`, checked to have one line per line of the reference file.
    public static func aligned(_ hypotheses: [String], file: String, references: [String], referenceFile: String) throws -> [String] {
        guard hypotheses.count == references.count else {
            throw DataError.malformed(
                file: file, line: min(hypotheses.count, references.count) + 1,
                expected: "as many lines as the reference \(referenceFile) (\(references.count)); got \(hypotheses.count)")
        }
        return hypotheses
    }

    /// Writes `report.md` and `report.json` (scores and hypotheses) into `dir`; returns the Markdown.
    public static func writeReport(_ results: [DirectionResult], to dir: URL) throws -> String {
        let md = markdown(results)
        try AtomicFile.write(md, to: dir.appendingPathComponent("report.md"))
        try AtomicFile.writeJSON(results, to: dir.appendingPathComponent("report.json"))
        return md
    }
}
