import Foundation

/// How much of the base model's function upcycling keeps, through the stages (issue 19's
/// question): dev perplexity of the dense base model, of the upcycled model before stage 1 (top-1
/// over n slices keeps one slice of n; copies keep the whole FFN), after stage 1 for several
/// budgets, and after stage 2, for slice and copy upcycling.
public struct UpcyclingStudy {
    public struct Row: Codable, Sendable {
        public var upcycle: String
        public var stage: String
        public var stage1Steps: Int
        public var stage2Steps: Int
        public var perplexity: [String: Double]
        public var meanPerplexity: Double {
            perplexity.isEmpty ? 0 : perplexity.values.reduce(0, +) / Double(perplexity.count)
        }
        enum CodingKeys: String, CodingKey {
            case upcycle, stage, stage1Steps = "stage1_steps", stage2Steps = "stage2_steps", perplexity
        }
    }

    let runner: MethodRunner
    let dev: [String: URL]

    public init(runner: MethodRunner, dev: [String: URL]) { self.runner = runner; self.dev = dev }

    func perplexity(_ m: DecoderModel) throws -> [String: Double] {
        var out: [String: Double] = [:]
        for (l, f) in dev { out[l] = try m.perplexity(file: f, tokenizer: runner.tokenizer, seq: runner.budget.shared.seq).perplexity }
        return out
    }

    /// Rows in order: base; per mode: before stage 1, after each stage-1 budget, after stage 2
    /// (from the largest stage-1 budget).
    public func run(stage1Budgets: [Int]) throws -> [Row] {
        let b = runner.budget
        var rows = [Row(upcycle: "—", stage: "dense base model", stage1Steps: 0, stage2Steps: 0, perplexity: try perplexity(runner.base))]
        for mode in UpcycleMode.allCases {
            var opts = runner.moe
            opts.upcycle = mode
            let cfg = try opts.config(for: runner.base.config, groups: 2, seed: b.seed)
            let up = try Upcycling.upcycle(runner.freshBase(), cfg)
            rows.append(
                Row(
                    upcycle: mode.rawValue, stage: "upcycled, before stage 1", stage1Steps: 0, stage2Steps: 0,
                    perplexity: try perplexity(up)))
            var last = up
            for steps in stage1Budgets.sorted() where steps > 0 {
                let m = try Upcycling.upcycle(runner.freshBase(), cfg)
                try runner.train(m, .stage1, runner.mono(1), steps: steps, lr: b.lr1, label: "\(mode.rawValue) stage 1")
                rows.append(Row(upcycle: mode.rawValue, stage: "after stage 1", stage1Steps: steps, stage2Steps: 0, perplexity: try perplexity(m)))
                last = m
            }
            let m2 = try Upcycling.beginStage2(last)
            try runner.train(m2, .stage2, runner.mt(2), steps: b.stage2Steps, lr: b.lr2, label: "\(mode.rawValue) stage 2")
            rows.append(
                Row(
                    upcycle: mode.rawValue, stage: "after stage 2", stage1Steps: stage1Budgets.max() ?? 0,
                    stage2Steps: b.stage2Steps, perplexity: try perplexity(m2)))
        }
        return rows
    }

    public static func markdown(_ rows: [Row], setup: ExperimentSetup, wall: Double) -> String {
        let langs = rows.first?.perplexity.keys.sorted() ?? []
        var md = """
            # Experiment: upcycling

            Dev perplexity (each language's side of `parallel/dev.L-en.tsv`; English: the English sides) of the dense base \
            model, the upcycled Mix-MoE model before stage 1, after stage 1 and after stage 2, for slice upcycling (the \
            paper's: expert e = the e-th d_ff/n slice, top-1 keeps one slice of n) and copy upcycling (an extension: every \
            expert the whole FFN, weights renormalised, so it starts as the dense model). Lower is better.
            Data: `\(setup.data)`; base model `\(setup.model)`; stage 1 lr \(setup.budget.lr1), stage 2 lr \(setup.budget.lr2), \
            \(setup.budget.shared.batchTokens) tokens per step; seed \(setup.seeds.first ?? 0). \
            Wall time \(String(format: "%.1f", wall / 60)) min.

            """
        md += "Reproduce: `\(setup.command(.upcycling))`\n\n"
        md += "| upcycling | stage | stage-1 steps | stage-2 steps | " + langs.joined(separator: " | ") + " | mean |\n"
        md += "|---|---|---|---|" + String(repeating: "---|", count: langs.count + 1) + "\n"
        for r in rows {
            md +=
                "| \(r.upcycle) | \(r.stage) | \(r.stage1Steps) | \(r.stage2Steps) | "
                + langs.map { String(format: "%.1f", r.perplexity[$0] ?? .nan) }.joined(separator: " | ")
                + String(format: " | %.1f |\n", r.meanPerplexity)
        }
        return md
    }
}
