import Foundation

/// Cross-lingual transfer (paper Section V-G, Figs. 4-5): Mix-MoE's stage 2 on the parallel data of
/// one language pair only (both directions), evaluated on every direction. Stage 1 is trained once
/// and shared. Fig. 4 is read as the gain of the stage-1 model over the base model per direction,
/// Fig. 5 as the gain of each single-pair stage 2 over the stage-1 model ("the incremental gains
/// achieved over Stage 1"); both are written as heatmaps.
public struct TransferStudy {
    public struct Row: Codable, Sendable {
        /// `base`, `stage 1`, or the language paired with English whose data stage 2 saw.
        public var model: String
        /// BLEU per evaluated direction.
        public var bleu: [String: Double]
        public var trainSeconds: Double
        enum CodingKeys: String, CodingKey { case model, bleu, trainSeconds = "train_s" }
    }

    let runner: MethodRunner
    let test: [Bitext]
    let segments: Int
    public var log: (String) -> Void = { _ in }

    public init(runner: MethodRunner, test: [Bitext], segments: Int) {
        self.runner = runner; self.test = test; self.segments = segments
    }

    func evaluate(_ m: DecoderModel) throws -> [String: Double] {
        let r = try Evaluation.run(Translator(model: m, tokenizer: runner.tokenizer), bitexts: test, maxSegments: segments)
        return Dictionary(uniqueKeysWithValues: r.map { ($0.direction, $0.bleu) })
    }

    /// Rows: the base model, the stage-1 model, then one stage-2 model per language in `pairs`.
    public func run(pairs: [String]) throws -> [Row] {
        log("[transfer] base model")
        var rows = [Row(model: "base", bleu: try evaluate(runner.base), trainSeconds: 0)]
        var t0 = monotonicSeconds()
        let m1 = try runner.mixMoEStage1()
        let s1 = monotonicSeconds() - t0
        log("[transfer] stage-1 model")
        rows.append(Row(model: "stage 1", bleu: try evaluate(m1), trainSeconds: s1))
        for lang in pairs {
            t0 = monotonicSeconds()
            let m2 = try runner.mixMoEStage2(from: m1, languages: [lang])
            let s2 = monotonicSeconds() - t0
            log("[transfer] stage 2 on \(lang)-en only")
            rows.append(Row(model: lang, bleu: try evaluate(m2), trainSeconds: s2))
        }
        return rows
    }

    /// Gains (BLEU) as heatmap rows: `rows[i] - reference` per direction.
    static func gains(_ rows: [Row], over reference: Row, directions: [String]) -> [[Double]] {
        rows.map { r in directions.map { (r.bleu[$0] ?? .nan) - (reference.bleu[$0] ?? .nan) } }
    }

    /// Fig. 4 (stage 1 minus base) and Fig. 5 (each pair's stage 2 minus stage 1) as SVG heatmaps.
    public static func figures(_ rows: [Row]) -> (stage1: String, stage2: String) {
        guard rows.count >= 2 else { return ("", "") }
        let dirs = rows[0].bleu.keys.sorted()
        let s1 = Heatmap.svg(
            title: "BLEU gain of the stage-1 model over the base model", rows: ["stage 1"], columns: dirs,
            values: gains([rows[1]], over: rows[0], directions: dirs), diverging: true)
        let pairRows = Array(rows.dropFirst(2))
        let s2 = Heatmap.svg(
            title: "BLEU gain over stage 1 after stage 2 on one pair (rows) per direction (columns)",
            rows: pairRows.map { "\($0.model)-en only" }, columns: dirs, values: gains(pairRows, over: rows[1], directions: dirs),
            diverging: true)
        return (s1, s2)
    }

    public static func markdown(_ rows: [Row], setup: ExperimentSetup, wall: Double) -> String {
        let dirs = rows.first?.bleu.keys.sorted() ?? []
        var md = """
            # Experiment: transfer

            Cross-lingual transfer (paper Figs. 4-5): Mix-MoE's stage 1 once, then stage 2 on the parallel data of one \
            language pair only (both directions), evaluated on every direction of the test split (first \
            \(setup.testSegments) segments, greedy). BLEU per direction; the figures show gains: stage 1 over the base \
            model, and each single-pair stage 2 over stage 1 (cells outside the trained pair measure transfer).
            Data: `\(setup.data)`; base model `\(setup.model)`; \(setup.budget.stage1Steps) + \(setup.budget.stage2Steps) \
            steps of \(setup.budget.shared.batchTokens) tokens, lr \(setup.budget.lr1) / \(setup.budget.lr2); seed \
            \(setup.seeds.first ?? 0). Wall time \(String(format: "%.1f", wall / 60)) min.

            """
        md += "Reproduce: `\(setup.command(.transfer))`\n\n"
        md += "| model | train min | " + dirs.joined(separator: " | ") + " |\n|---|---|" + String(repeating: "---|", count: dirs.count) + "\n"
        for r in rows {
            md +=
                "| \(r.model == "base" || r.model == "stage 1" ? r.model : "stage 2 on \(r.model)-en") | "
                + String(format: "%.1f", r.trainSeconds / 60) + " | "
                + dirs.map { d in
                    let v = String(format: "%.1f", r.bleu[d] ?? .nan)
                    // bold: the directions of the pair this row trained on
                    return d.split(separator: "-").contains(Substring(r.model)) ? "**\(v)**" : v
                }.joined(separator: " | ") + " |\n"
        }
        md += "\n![stage 1 over base](transfer-stage1.svg)\n\n![stage 2 over stage 1](transfer-stage2.svg)\n"
        return md
    }
}
