import Foundation

/// What an experiment was run on: recorded in every report so a table can be reproduced.
public struct ExperimentSetup: Codable, Sendable {
    /// Corpus folder and base model directory, as given.
    public var data: String
    public var model: String
    public var budget: Budget
    public var testSegments: Int
    public var monoBytes: Int
    /// Test corpora replacing the corpus folder's test split (nil: `parallel/test.*`).
    public var test: [String]?
    public var seeds: [UInt64]
    /// The methods run (nil: every variant of the experiment).
    public var methods: [Method]?
    /// Threads of the numeric work (results are deterministic for a seed and a thread count).
    public var threads: Int?
    /// Methods trained at their own peak rates (`--method-lr`; nil or empty: all at the budget's).
    public var methodLearningRates: [MethodLearningRate]?
    /// Built from the run cache alone (`--cached-only`); `missingRuns` lists what it lacked.
    public var cachedOnly: Bool?
    public var missingRuns: [String]?

    enum CodingKeys: String, CodingKey {
        case data, model, budget, testSegments = "test_segments", monoBytes = "mono_bytes", test, seeds, methods, threads
        case methodLearningRates = "method_lr", cachedOnly = "cached_only", missingRuns = "missing_runs"
    }

    public init(
        data: String, model: String, budget: Budget, testSegments: Int, monoBytes: Int, test: [String]?, seeds: [UInt64],
        methods: [Method]? = nil, threads: Int? = nil
    ) {
        self.data = data; self.model = model; self.budget = budget; self.testSegments = testSegments; self.monoBytes = monoBytes
        self.test = test; self.seeds = seeds; self.methods = methods; self.threads = threads
    }

    /// "lr A / B" of the budget, and the methods trained at their own rates.
    public var learningRates: String {
        var t = "lr \(budget.lr1) / \(budget.lr2)"
        if let o = methodLearningRates, !o.isEmpty {
            t += " (own rates: " + o.map { r in "\(r.method.rawValue) " + (r.lr1.map { "\($0) / " } ?? "") + "\(r.lr2)" }.joined(separator: ", ") + ")"
        }
        return t
    }

    /// The command line that reproduces the experiment.
    public func command(_ name: ExperimentName) -> String {
        let b = budget, s = b.shared
        var c =
            "mixmoe experiment \(name.rawValue) --data \(data) --model \(model) --stage1-steps \(b.stage1Steps) "
            + "--stage2-steps \(b.stage2Steps) --batch-tokens \(s.batchTokens) --micro-tokens \(s.microTokens) --seq \(s.seq) "
            + "--lr1 \(b.lr1) --lr2 \(b.lr2) --warmup \(s.warmup) --weight-decay \(s.weightDecay) "
            + "--test-segments \(testSegments) --mono-bytes \(monoBytes) --seeds \(seeds.map(String.init).joined(separator: ","))"
        if let test { c += " --test " + test.joined(separator: " --test ") }
        if let methods { c += " --methods " + methods.map(\.rawValue).joined(separator: ",") }
        if let threads { c += " --threads \(threads)" }
        for o in methodLearningRates ?? [] { c += " --method-lr \(o)" }
        if cachedOnly == true { c += " --cached-only" }
        return c
    }
}

/// The Markdown, JSON and SVG reports of an experiment (`reports/NAME.{md,json,svg}`).
public enum ExperimentReport {
    /// The report as Markdown.
    public static func markdown(
        name: ExperimentName, results: [RunResult], setup: ExperimentSetup, wall: Double, references: [String: [String]] = [:],
        marks precomputed: [String: Marks]? = nil
    ) -> String {
        // the experiment's variants that ran (`--methods` may select a subset), in its order
        let variants = name.variants.map(\.label).filter { l in results.contains { $0.variant == l } }
        let dirs = results.first?.directions.map(\.direction) ?? []
        let marks = precomputed ?? significance(results: results, variants: variants, references: references)
        let b = setup.budget
        var md = "# Experiment: \(name.rawValue)\n\n"
        md += "Data: `\(setup.data)` (train: every direction of `parallel/train.*`; mono: `mono/*.txt`, first \(setup.monoBytes) bytes each); "
        md +=
            "test: first \(setup.testSegments) segments per direction of "
            + (setup.test.map { $0.map { "`\($0)`" }.joined(separator: ", ") } ?? "`parallel/test.*`") + ", greedy decoding.\n"
        md += "Base model: `\(setup.model)`. Budget: \(b.stage1Steps) mono + \(b.stage2Steps) parallel steps of \(b.shared.batchTokens) tokens "
        md += "(one-stage methods: \(b.stage1Steps + b.stage2Steps) steps), \(setup.learningRates), seq \(b.shared.seq). "
        md += "Seeds: \(setup.seeds.map(String.init).joined(separator: ", ")). Wall time: \(String(format: "%.1f", wall / 60)) min.\n"
        md += "Reproduce: `\(setup.command(name))`\n\n"
        let reused = results.filter(\.cached)
        if !reused.isEmpty {
            md +=
                "Reused from the run cache (trained by an earlier experiment with identical settings): "
                + reused.map { "\($0.variant) (seed \($0.seed))" }.joined(separator: ", ") + ". Training times below are those of the original runs.\n\n"
        }
        if let missing = setup.missingRuns, !missing.isEmpty {
            md += "Not in the run cache, so not in the tables (--cached-only trains nothing): " + missing.joined(separator: ", ") + ".\n\n"
        }
        md += "Per-direction columns are BLEU (sacreBLEU-compatible, 13a; zh for en-zh).\n"
        let reference = marks.first { $0.value.isReference }?.key ?? "dense SFT"
        let short = reference == "dense SFT" ? "SFT" : reference
        if marks.isEmpty {
            md += "No significance marks: the runs carry no hypotheses (trained before they were kept).\n\n"
        } else {
            md +=
                "† differs from \(reference)\(reference == "dense SFT" ? "" : " (the reference: this experiment has no dense SFT)"), "
                + "‡ from the best variant by mean BLEU (\(marks.first { $0.value.isBest }?.key ?? "?")), p < 0.05 (for the mean also its 95% interval excluding 0): "
                + "paired bootstrap over the test segments (1000 resamples, sacreBLEU's resampling; for the mean, resampled within every "
                + "direction), of the score averaged over the seeds both variants ran. Δ \(short): mean BLEU minus \(reference)'s, "
                + "with its 95% bootstrap interval. Mean BLEU and chrF are mean ± sample standard deviation over seeds; "
                + "→en and en→: mean BLEU of the directions into and out of English.\n\n"
        }
        // the two sides of the pivot, averaged apart: methods that train few parameters have
        // differed most into English (docs/RESULTS.md)
        let into = dirs.filter { $0.hasSuffix("-\(CorpusFolder.pivot)") }, outOf = dirs.filter { $0.hasPrefix("\(CorpusFolder.pivot)-") }
        md +=
            "| variant | seeds | trained params | mean BLEU | Δ \(short) [95% CI] | mean chrF | →en | en→ | train min | " + dirs.joined(separator: " | ")
            + " |\n"
        md += "|---|---|---|---|---|---|---|---|---|" + String(repeating: "---|", count: dirs.count) + "\n"
        for v in variants {
            let rs = results.filter { $0.variant == v }
            let bl = meanStd(rs.map(\.meanBLEU)), c = meanStd(rs.map(\.meanChrF))
            let per = dirs.map { d in meanStd(rs.compactMap { $0.directions.first { $0.direction == d }?.bleu }).mean }
            let m = marks[v]
            let tmin = meanStd(rs.map(\.trainSeconds)).mean / 60
            // one seed has no spread: print the value alone rather than a misleading "± 0.00"
            let meanMark = m?.mean ?? ""
            let delta = m?.vsReference.map { String(format: "%+.2f [%+.2f, %+.2f]", $0.delta, $0.lower, $0.upper) } ?? "—"
            let cell =
                rs.count > 1
                ? String(format: "%.2f ± %.2f", bl.mean, bl.std) + meanMark + " | " + delta + String(format: " | %.2f ± %.2f", c.mean, c.std)
                : String(format: "%.2f", bl.mean) + meanMark + " | " + delta + String(format: " | %.2f", c.mean)
            let trained = rs.compactMap(\.trainedParameters).first.map { String(format: "%.2f M", Double($0) / 1e6) } ?? "—"
            func sideMean(_ ds: [String]) -> String {
                let xs = ds.compactMap { d in dirs.firstIndex(of: d).map { per[$0] } }
                return xs.isEmpty ? "—" : String(format: "%.2f", xs.reduce(0, +) / Double(xs.count))
            }
            md +=
                "| \(v) | \(rs.count) | \(trained) | " + cell + " | " + sideMean(into) + " | " + sideMean(outOf) + String(format: " | %.1f", tmin) + " | "
                + zip(dirs, per).map { String(format: "%.1f", $0.1) + (m?.directions[$0.0] ?? "") }.joined(separator: " | ") + " |\n"
        }
        if name == .forgetting || name == .main {
            let langs = results.first?.perplexity.keys.sorted() ?? []
            md +=
                "\n## Monolingual perplexity on the dev split (lower is better)\n\n| variant | " + langs.joined(separator: " | ") + " |\n|---|"
                + String(repeating: "---|", count: langs.count) + "\n"
            for v in variants {
                let rs = results.filter { $0.variant == v }
                md +=
                    "| \(v) | " + langs.map { l in String(format: "%.1f", meanStd(rs.compactMap { $0.perplexity[l] }).mean) }.joined(separator: " | ") + " |\n"
            }
        }
        if name == .balance || name == .utilisation {
            md += "\n## Expert use\n\nUtilisation = normalised entropy of each group's expert-selection fractions on the test directions "
            md += "(1 = perfectly even), averaged over MoE layers, groups and directions.\n\n| variant | utilisation |\n|---|---|\n"
            for v in variants {
                let u = results.filter { $0.variant == v }.map { ExpertUsage.utilisation($0.expertStats) }
                md += "| \(v) | " + String(format: "%.3f", meanStd(u).mean) + " |\n"
            }
            if name == .utilisation, !results.isEmpty { md += "\n![expert selection](utilisation.svg)\n" }
        }
        return md
    }

    /// Significance marks per variant: for the mean BLEU and each direction, "†" when the variant
    /// differs from the reference (dense SFT, or the experiment's first variant when it has no
    /// dense SFT, e.g. top-1 in `topk`) and "‡" when it differs from the best variant (p < 0.05),
    /// and the difference from the reference in mean BLEU with its 95% interval. Every test is
    /// ``PairedTest/meanDifference(metrics:references:a:b:samples:seed:)``: a paired bootstrap over
    /// test segments (stratified by direction) of the score averaged over the seeds both variants
    /// ran. Empty when hypotheses are missing.
    public struct Marks: Sendable {
        public var mean = ""
        public var directions: [String: String] = [:]
        public var isBest = false
        /// True for the reference variant itself.
        public var isReference = false
        /// Mean BLEU minus the reference's, with its interval and p-value (nil for the reference itself).
        public var vsReference: PairedTest.MeanDifference?
        /// The seeds pooled in the comparison with the reference.
        public var seeds = 0
    }

    public static func significance(results: [RunResult], variants: [String], references: [String: [String]]) -> [String: Marks] {
        guard !references.isEmpty, results.allSatisfy({ $0.directions.allSatisfy { $0.hypotheses != nil } }) else { return [:] }
        // variant -> seed -> run
        var runs: [String: [UInt64: RunResult]] = [:]
        for r in results where runs[r.variant]?[r.seed] == nil { runs[r.variant, default: [:]][r.seed] = r }
        func meanBLEU(_ v: String) -> Double { meanStd(runs[v]?.values.map(\.meanBLEU) ?? []).mean }
        guard let reference = runs["dense SFT"] != nil ? "dense SFT" : variants.first(where: { runs[$0] != nil }),
            let best = runs.keys.max(by: { meanBLEU($0) < meanBLEU($1) || (meanBLEU($0) == meanBLEU($1) && $0 > $1) }),
            let any = runs[reference]?.values.first
        else { return [:] }
        let dirs = any.directions.map(\.direction).filter { references[$0] != nil }
        let metrics = Evaluation.bleuMetrics(dirs)
        let refs = dirs.map { references[$0]! }
        func hyps(_ r: RunResult) -> [[String]] { dirs.map { d in r.directions.first { $0.direction == d }?.hypotheses ?? [] } }
        var out: [String: Marks] = [:]
        for v in variants {
            guard let mine = runs[v] else { continue }
            var m = Marks()
            m.isBest = v == best
            m.isReference = v == reference
            for (other, sign) in [(reference, "†"), (best, "‡")] where other != v {
                guard let theirs = runs[other] else { continue }
                let seeds = Set(mine.keys).intersection(theirs.keys).sorted()
                guard !seeds.isEmpty else { continue }
                let a = seeds.map { hyps(theirs[$0]!) }, b = seeds.map { hyps(mine[$0]!) }
                // identical outputs are never marked (sacreBLEU's test gives them p = 1/(n+1): its `>` counts no resample)
                if a != b {
                    let diff = PairedTest.meanDifference(metrics: metrics, references: refs, a: a, b: b)
                    if diff.significant { m.mean += sign }
                    if sign == "†" { m.vsReference = diff; m.seeds = seeds.count }
                } else if sign == "†" {
                    m.vsReference = PairedTest.MeanDifference(delta: 0, lower: 0, upper: 0, pValue: 1); m.seeds = seeds.count
                }
                for (k, d) in dirs.enumerated() where a.map({ $0[k] }) != b.map({ $0[k] }) {
                    let p = PairedTest.meanDifference(
                        metrics: [metrics[k]], references: [refs[k]], a: a.map { [$0[k]] }, b: b.map { [$0[k]] }
                    ).pValue
                    if p < 0.05 { m.directions[d, default: ""] += sign }
                }
            }
            out[v] = m
        }
        return out
    }

    /// The utilisation heatmap: one row per direction, layer and group, one column per expert.
    public static func heatmap(_ stats: ExpertStatistics) -> String {
        let rows = ExpertUsage.rows(stats)
        let n = rows.first?.use.fraction.count ?? 0
        return Heatmap.svg(
            title: "Expert selection proportion per direction, layer and group",
            rows: rows.map { "\($0.label) L\($0.layer) \($0.group.uppercased())" },
            columns: (0..<n).map { "e\($0)" }, values: rows.map(\.use.fraction))
    }

    /// The machine-readable report.
    public struct JSONReport: Codable, Sendable {
        public var experiment: ExperimentName
        public var setup: ExperimentSetup
        public var wallTimeSeconds: Double
        public var runs: [RunResult]
        /// The variant the Δ column is taken against: dense SFT, or the first variant of an
        /// experiment without it (absent without hypotheses).
        public var reference: String?
        /// Each variant's mean BLEU minus the reference's, pooled over seeds, with its bootstrap
        /// interval and p-value (absent without hypotheses).
        public var vsReference: [String: PairedTest.MeanDifference]?
        enum CodingKeys: String, CodingKey {
            case experiment, setup, wallTimeSeconds = "wall_time_s", runs, reference, vsReference = "vs_reference"
        }
    }

    /// Writes `NAME.md`, `NAME.json` (and `utilisation.svg`) into `dir`; returns the Markdown.
    @discardableResult
    public static func write(
        name: ExperimentName, results: [RunResult], setup: ExperimentSetup, wall: Double, references: [String: [String]] = [:], to dir: URL
    ) throws -> String {
        let variants = name.variants.map(\.label).filter { l in results.contains { $0.variant == l } }
        let marks = significance(results: results, variants: variants, references: references)
        let md = markdown(name: name, results: results, setup: setup, wall: wall, references: references, marks: marks)
        if name == .utilisation, let r = results.first {
            try AtomicFile.write(heatmap(r.expertStats), to: dir.appendingPathComponent("utilisation.svg"))
        }
        try AtomicFile.write(md, to: dir.appendingPathComponent("\(name.rawValue).md"))
        try AtomicFile.writeJSON(
            JSONReport(
                experiment: name, setup: setup, wallTimeSeconds: wall, runs: results,
                reference: marks.first { $0.value.isReference }?.key,
                vsReference: marks.isEmpty ? nil : marks.compactMapValues(\.vsReference)),
            to: dir.appendingPathComponent("\(name.rawValue).json"))
        return md
    }
}
