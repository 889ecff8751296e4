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
        /// chrF per evaluated direction (finer-grained than BLEU on weak models).
        public var chrf: [String: Double] = [:]
        public var trainSeconds: Double
        /// Read from the checkpoint of an earlier invocation rather than computed in this one (not written).
        public var reused = false
        enum CodingKeys: String, CodingKey { case model, bleu, chrf, trainSeconds = "train_s" }
        init(model: String, scores: (bleu: [String: Double], chrf: [String: Double]), trainSeconds: Double) {
            self.model = model; self.bleu = scores.bleu; self.chrf = scores.chrf; self.trainSeconds = trainSeconds
        }
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            model = try c.decode(String.self, forKey: .model)
            bleu = try c.decode([String: Double].self, forKey: .bleu)
            chrf = try c.decodeIfPresent([String: Double].self, forKey: .chrf) ?? [:]  // absent in rows kept before it was
            trainSeconds = try c.decode(Double.self, forKey: .trainSeconds)
        }
    }

    let runner: MethodRunner
    let test: [Bitext]
    let segments: Int
    public var log: (String) -> Void = { _ in }
    /// Where finished rows are kept so a killed study resumes (nil: nothing kept). The file holds
    /// the rows of one setup only: `key` names it (``key(fingerprint:budget:threads:)``).
    public var checkpoint: URL?

    public init(runner: MethodRunner, test: [Bitext], segments: Int) {
        self.runner = runner; self.test = test; self.segments = segments
    }

    /// The checkpoint file's key: everything a row depends on (base weights, data, test segments,
    /// budget, seed, thread count, numerics version), as in ``RunCache/key(fingerprint:method:moe:budget:threads:codeVersion:)``.
    public static func key(fingerprint: String, budget: Budget, threads: Int) throws -> String {
        "transfer-" + (try RunCache.key(fingerprint: fingerprint, method: .mixMoE, moe: MoEOptions(), budget: budget, threads: threads))
    }

    func evaluate(_ m: DecoderModel) throws -> (bleu: [String: Double], chrf: [String: Double]) {
        let r = try Evaluation.run(Translator(model: m, tokenizer: runner.tokenizer), bitexts: test, maxSegments: segments)
        return (Dictionary(uniqueKeysWithValues: r.map { ($0.direction, $0.bleu) }), Dictionary(uniqueKeysWithValues: r.map { ($0.direction, $0.chrf) }))
    }

    /// Rows finished by an earlier invocation of the same setup, by model name.
    func loadRows() -> [String: Row] {
        guard let url = checkpoint, let d = try? Data(contentsOf: url), let rows = try? JSONDecoder().decode([Row].self, from: d) else {
            return [:]
        }
        return Dictionary(rows.map { ($0.model, $0) }, uniquingKeysWith: { _, b in b })
    }

    func saveRows(_ rows: [String: Row]) throws {
        guard let url = checkpoint else { return }
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try AtomicFile.write(enc.encode(rows.values.sorted { $0.model < $1.model }), to: url)
    }

    /// Rows: the base model, the stage-1 model, then one stage-2 model per language in `pairs`.
    /// Each finished row is written to `checkpoint` at once; a rerun reuses those rows and trains
    /// stage 1 again (deterministic for a seed and thread count) only if a stage-2 row is missing.
    public func run(pairs: [String]) throws -> [Row] {
        // every pair is checked before hours of work start, not when its turn comes
        // the pivot is in every pair: training on "its pair" would be training on all of them
        let available = Set(runner.examples.flatMap { [$0.direction.src, $0.direction.tgt] }).subtracting([CorpusFolder.pivot]).sorted()
        for lang in pairs where !available.contains(lang) {
            throw SettingsError.invalid(
                option: "--pairs",
                expected: "languages paired with the pivot in the parallel training data (\(available.joined(separator: ", "))), not '\(lang)'")
        }
        var done = loadRows()
        func row(_ name: String, _ make: () throws -> Row) throws -> Row {
            if var r = done[name] {
                log("[transfer] \(name): reused from \(checkpoint?.path ?? "")")
                r.reused = true
                return r
            }
            let r = try make()
            done[name] = r
            try saveRows(done)
            return r
        }
        var rows = [
            try row("base") {
                log("[transfer] base model")
                return Row(model: "base", scores: try evaluate(runner.base), trainSeconds: 0)
            }
        ]
        var m1: DecoderModel?
        var s1 = 0.0
        func stage1() throws -> DecoderModel {
            if let m1 { return m1 }
            let t0 = monotonicSeconds()
            let m = try runner.mixMoEStage1()
            s1 = monotonicSeconds() - t0
            m1 = m
            return m
        }
        rows.append(
            try row("stage 1") {
                let m = try stage1()
                log("[transfer] stage-1 model")
                return Row(model: "stage 1", scores: try evaluate(m), trainSeconds: s1)
            })
        for lang in pairs {
            rows.append(
                try row(lang) {
                    let m = try stage1()
                    let t0 = monotonicSeconds()
                    let m2 = try runner.mixMoEStage2(from: m, languages: [lang])
                    let s2 = monotonicSeconds() - t0
                    log("[transfer] stage 2 on \(lang)-en only")
                    return Row(model: lang, scores: try evaluate(m2), trainSeconds: s2)
                })
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
        let reused = rows.filter(\.reused).map(\.model)
        if !reused.isEmpty {
            md +=
                "Rows computed by an earlier invocation of the same setup and reused (their train minutes are the original's; the wall time above is this invocation's): \(reused.joined(separator: ", ")).\n\n"
        }
        md +=
            "| model | train min | mean BLEU | mean chrF | " + dirs.joined(separator: " | ") + " |\n|---|---|---|---|"
            + String(repeating: "---|", count: dirs.count) + "\n"
        for r in rows {
            md +=
                "| \(r.model == "base" || r.model == "stage 1" ? r.model : "stage 2 on \(r.model)-en") | "
                + String(format: "%.1f", r.trainSeconds / 60) + " | "
                + String(
                    format: "%.2f | %@ | ", r.bleu.values.reduce(0, +) / Double(max(r.bleu.count, 1)),
                    r.chrf.isEmpty ? "–" : String(format: "%.2f", r.chrf.values.reduce(0, +) / Double(r.chrf.count)))
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
