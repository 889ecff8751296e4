import ArgumentParser
import Foundation
import MixMoE

/// Data and budget options of experiments and baselines.
struct ExperimentOptions: ParsableArguments {
    @Option(help: "Base model directory (with tokenizer.json).")
    var model: String = "models/base"
    @Option(help: "Corpus folder with mono/L.txt and parallel/{train,dev,test}.L-en.tsv (the shipped subset or ../shared/data).")
    var data: String = "data/demo"
    @Option(help: "Steps of the monolingual stage (one-stage methods get both budgets).")
    var stage1Steps: Int = 100
    @Option(help: "Steps of the parallel stage.")
    var stage2Steps: Int = 200
    @Option(help: "Tokens per optimiser step.")
    var batchTokens: Int = 8192
    @Option(help: "Tokens per micro-batch.")
    var microTokens: Int = 4096
    @Option(help: "Sequence length (packed mono windows; longest prompt + translation kept).")
    var seq: Int = 128
    @Option(help: "Peak learning rate of the monolingual stage.")
    var lr1: Double = 1e-3
    @Option(help: "Peak learning rate of the parallel stage.")
    var lr2: Double = 1e-3
    @Option(help: "Test segments per direction.")
    var testSegments: Int = 100
    @Option(help: "Use at most this many bytes of each monolingual file.")
    var monoBytes: Int = 2_000_000

    static let langs = ["cs", "de", "ru", "tr", "zh", "fi", "et"]

    var budget: Budget {
        var b = Budget()
        b.stage1Steps = stage1Steps; b.stage2Steps = stage2Steps; b.batchTokens = batchTokens; b.microTokens = microTokens
        b.seq = seq; b.lr1 = lr1; b.lr2 = lr2
        return b
    }

    /// Base model, tokenizer, capped mono files, train/test bitexts, dev text per language.
    func load(scratch: URL) throws -> (DecoderModel, BPETokenizer, [URL], [Bitext], [Bitext], [String: URL]) {
        let dir = URL(fileURLWithPath: model)
        guard FileManager.default.fileExists(atPath: dir.appendingPathComponent("model.safetensors").path) else {
            throw CLIError("no base model at \(model). Hint: pretrain one with scripts/pretrain_base.sh, or pass --model DIR.")
        }
        let (m, tok) = try DecoderModel.loadWithTokenizer(directory: dir)
        let root = URL(fileURLWithPath: data)
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        var mono: [URL] = []
        for l in ["en"] + Self.langs {
            let lines = try readLines(root.appendingPathComponent("mono/\(l).txt"), maxBytes: monoBytes)
            let f = scratch.appendingPathComponent("mono.\(l).txt")
            try AtomicFile.write(lines.joined(separator: "\n") + "\n", to: f)
            mono.append(f)
        }
        let train = try Self.langs.map { try Corpus.readBitext(root.appendingPathComponent("parallel/train.\($0)-en.tsv").path) }
        let test = try Self.langs.map { try Corpus.readBitext(root.appendingPathComponent("parallel/test.\($0)-en.tsv").path) }
        var dev: [String: URL] = [:]
        var en: [String] = []
        for l in Self.langs {
            let b = try Corpus.readBitext(root.appendingPathComponent("parallel/dev.\(l)-en.tsv").path)
            let f = scratch.appendingPathComponent("dev.\(l).txt")
            try AtomicFile.write(b.pairs.map(\.b).joined(separator: "\n") + "\n", to: f)
            dev[l] = f
            en += b.pairs.map(\.a).prefix(200)
        }
        let fe = scratch.appendingPathComponent("dev.en.txt")
        try AtomicFile.write(en.joined(separator: "\n") + "\n", to: fe)
        dev["en"] = fe
        return (m, tok, mono, train, test, dev)
    }
}

struct Experiment: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one of the paper's experiments and write reports/NAME.md, .json and figures.",
        discussion: "NAME: " + ExperimentPlan.names.joined(separator: ", "))

    @Argument(help: "Experiment name.")
    var name: String
    @Option(help: "Comma-separated seeds (mean and spread are reported).")
    var seeds: String = "0"
    @Option(help: "Folder for the reports.")
    var reports: String = "reports"
    @Option(help: "Folder of finished runs reused across experiments (same base weights, data, method, options, budget and seed).")
    var cache: String = "runs/experiments/cache"
    @Flag(help: "Train every run again instead of reusing finished ones.")
    var noCache = false
    @OptionGroup var opts: ExperimentOptions
    @OptionGroup var compute: ComputeOptions

    func run() async throws {
        try compute.apply()
        try await reportingErrors {
            guard let variants = ExperimentPlan.variants(name) else {
                throw ValidationError("unknown experiment '\(name)'; one of: \(ExperimentPlan.names.joined(separator: ", "))")
            }
            let seedList = try seeds.split(separator: ",").map { s -> UInt64 in
                guard let v = UInt64(s) else { throw ValidationError("--seeds: '\(s)' is not a number") }
                return v
            }
            let t0 = monotonicSeconds()
            let scratch = URL(fileURLWithPath: "runs/experiments/\(name)")
            let (m, tok, mono, train, test, dev) = try opts.load(scratch: scratch)
            let runner = ExperimentRunner(name: name, baseModel: m, tokenizer: tok, monoFiles: mono, monoDev: dev, train: train,
                                          test: test, budget: opts.budget, seeds: seedList, testSegments: opts.testSegments) {
                printErr(String(format: "[%6.1f min] ", (monotonicSeconds() - t0) / 60) + $0)
            }
            if !noCache { runner.cache = RunCache(directory: URL(fileURLWithPath: cache)) }
            let results = try runner.run(variants)
            let wall = monotonicSeconds() - t0
            let rep = URL(fileURLWithPath: reports)
            try ExperimentReport.write(name: name, variants: variants.map(\.label), results: results, opts: opts, seeds: seedList,
                                       wall: wall, to: rep)
            print(try String(contentsOf: rep.appendingPathComponent("\(name).md"), encoding: .utf8), terminator: "")
        }
    }
}

struct Baseline: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train one method (a baseline or Mix-MoE) from a base model with the experiments' data and budget, and save it.",
        discussion: "METHOD: " + Method.allCases.map(\.rawValue).joined(separator: ", "))

    @Argument(help: "Method.")
    var method: String
    @Option(help: "Output model directory.")
    var out: String
    @OptionGroup var opts: ExperimentOptions
    @OptionGroup var moe: MoEFlags
    @OptionGroup var compute: ComputeOptions

    func run() async throws {
        try compute.apply()
        try await reportingErrors {
            guard let meth = Method(rawValue: method) else {
                throw ValidationError("unknown method '\(method)'; one of: \(Method.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let dst = URL(fileURLWithPath: out)
            let (m, tok, mono, train, _, _) = try opts.load(scratch: dst.appendingPathComponent("data"))
            let runner = try MethodRunner(base: m, tokenizer: tok, monoFiles: mono, parallel: train, budget: opts.budget,
                                          moe: moe.options) { printErr($0) }
            let trained = try runner.run(meth)
            try trained.save(directory: dst)
            try AtomicFile.write(Data(contentsOf: URL(fileURLWithPath: opts.model).appendingPathComponent("tokenizer.json")),
                                 to: dst.appendingPathComponent("tokenizer.json"))
            printErr("wrote \(out)")
        }
    }
}

struct MoEFlags: ParsableArguments {
    @Option(help: "Experts per group.")
    var experts: Int = 4
    @Option(help: "One MoE layer every N layers.")
    var every: Int = 4
    @Option(help: "Placement: uniform, bottom, top, dense-bottom or a list.")
    var placement: String = "uniform"
    @Option(help: "Router features: fft, dct, random, none.")
    var routerFeatures: String = "fft"
    @Option(help: "Experts per token.")
    var topK: Int = 1
    @Option(help: "Load-balance weight lambda.")
    var lbCoef: Double = 0.01

    var options: MoEOptions {
        var o = MoEOptions()
        o.experts = experts; o.every = every; o.placement = placement; o.routerFeatures = routerFeatures
        o.topK = topK; o.lbCoef = lbCoef
        return o
    }
}

/// Markdown / JSON / SVG reports of an experiment.
enum ExperimentReport {
    static func write(name: String, variants: [String], results: [RunResult], opts: ExperimentOptions, seeds: [UInt64],
                      wall: Double, to dir: URL) throws {
        let dirs = results.first?.directions.map(\.direction) ?? []
        var md = "# Experiment: \(name)\n\n"
        md += "Data: `\(opts.data)` (train: all 14 directions of `parallel/train.*`; mono: `mono/*.txt`, first \(opts.monoBytes) bytes each); "
        md += "test: first \(opts.testSegments) segments per direction of `parallel/test.*`, greedy decoding.\n"
        md += "Base model: `\(opts.model)`. Budget: \(opts.stage1Steps) mono + \(opts.stage2Steps) parallel steps of \(opts.batchTokens) tokens "
        md += "(one-stage methods: \(opts.stage1Steps + opts.stage2Steps) steps), lr \(opts.lr1) / \(opts.lr2), seq \(opts.seq). "
        md += "Seeds: \(seeds.map(String.init).joined(separator: ", ")). Wall time: \(String(format: "%.1f", wall / 60)) min.\n"
        md += "Reproduce: `mixmoe experiment \(name) --data \(opts.data) --model \(opts.model) --stage1-steps \(opts.stage1Steps) "
            + "--stage2-steps \(opts.stage2Steps) --batch-tokens \(opts.batchTokens) --micro-tokens \(opts.microTokens) --seq \(opts.seq) "
            + "--lr1 \(opts.lr1) --lr2 \(opts.lr2) --test-segments \(opts.testSegments) --mono-bytes \(opts.monoBytes) "
            + "--seeds \(seeds.map(String.init).joined(separator: ","))`\n\n"
        let reused = results.filter(\.cached)
        if !reused.isEmpty {
            md += "Reused from the run cache (trained by an earlier experiment with identical settings): "
                + reused.map { "\($0.variant) (seed \($0.seed))" }.joined(separator: ", ") + ". Training times below are those of the original runs.\n\n"
        }
        md += "Per-direction columns are BLEU (sacreBLEU-compatible, 13a; zh for en-zh).\n\n"
        md += "| variant | mean BLEU | mean chrF | train min | " + dirs.joined(separator: " | ") + " |\n"
        md += "|---|---|---|---|" + String(repeating: "---|", count: dirs.count) + "\n"
        for v in variants {
            let rs = results.filter { $0.variant == v }
            let b = meanStd(rs.map(\.meanBLEU)), c = meanStd(rs.map(\.meanChrF))
            let per = dirs.map { d in meanStd(rs.compactMap { $0.directions.first { $0.direction == d }?.bleu }).mean }
            let tmin = meanStd(rs.map(\.trainSeconds)).mean / 60
            // one seed has no spread: print the value alone rather than a misleading "± 0.00"
            let cell = rs.count > 1 ? String(format: "%.2f ± %.2f | %.2f ± %.2f", b.mean, b.std, c.mean, c.std)
                                    : String(format: "%.2f | %.2f", b.mean, c.mean)
            md += "| \(v) | " + cell + String(format: " | %.1f", tmin) + " | "
                + per.map { String(format: "%.1f", $0) }.joined(separator: " | ") + " |\n"
        }
        if name == "forgetting" || name == "main" {
            let langs = results.first?.perplexity.keys.sorted() ?? []
            md += "\n## Monolingual perplexity on the dev split (lower is better)\n\n| variant | " + langs.joined(separator: " | ") + " |\n|---|"
                + String(repeating: "---|", count: langs.count) + "\n"
            for v in variants {
                let rs = results.filter { $0.variant == v }
                md += "| \(v) | " + langs.map { l in String(format: "%.1f", meanStd(rs.compactMap { $0.perplexity[l] }).mean) }.joined(separator: " | ") + " |\n"
            }
        }
        if name == "balance" || name == "utilisation" {
            md += "\n## Expert use\n\nUtilisation = normalised entropy of each group's expert-selection fractions on the test directions "
            md += "(1 = perfectly even), averaged over MoE layers, groups and directions.\n\n| variant | utilisation |\n|---|---|\n"
            for v in variants {
                let u = results.filter { $0.variant == v }.map { utilisation($0.expertStats) }
                md += "| \(v) | " + String(format: "%.3f", meanStd(u).mean) + " |\n"
            }
            if name == "utilisation", let r = results.first {
                let (rows, vals) = heatRows(r.expertStats)
                let n = vals.first?.count ?? 0
                let svg = Heatmap.svg(title: "Expert selection proportion per direction, layer and group", rows: rows,
                                      columns: (0..<n).map { "e\($0)" }, values: vals)
                try AtomicFile.write(svg, to: dir.appendingPathComponent("utilisation.svg"))
                md += "\n![expert selection](utilisation.svg)\n"
            }
        }
        try AtomicFile.write(md, to: dir.appendingPathComponent("\(name).md"))
        let json: [String: Any] = [
            "experiment": name, "seeds": seeds.map { Int($0) }, "wall_time_s": wall, "data": opts.data, "model": opts.model,
            "test_segments": opts.testSegments,
            "budget": ["stage1_steps": opts.stage1Steps, "stage2_steps": opts.stage2Steps, "batch_tokens": opts.batchTokens,
                       "seq": opts.seq, "lr1": opts.lr1, "lr2": opts.lr2],
            "runs": results.map { r in
                ["variant": r.variant, "seed": Int(r.seed), "train_s": r.trainSeconds, "reused_from_cache": r.cached, "mean_bleu": r.meanBLEU, "mean_chrf": r.meanChrF,
                 "perplexity": r.perplexity, "expert_stats": r.expertStats,
                 "directions": r.directions.map(\.jsonObject)] as [String: Any]
            },
        ]
        try AtomicFile.write(JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys]),
                             to: dir.appendingPathComponent("\(name).json"))
    }

    /// Mean normalised entropy of the fraction vectors in expert statistics.
    static func utilisation(_ stats: [String: Any]) -> Double {
        var hs: [Double] = []
        for (_, layers) in stats {
            for (_, groups) in (layers as? [String: Any]) ?? [:] {
                for (_, g) in (groups as? [String: Any]) ?? [:] {
                    guard let f = (g as? [String: Any])?["fraction"] as? [Double], f.count > 1 else { continue }
                    let h = -f.filter { $0 > 0 }.map { $0 * log($0) }.reduce(0, +)
                    hs.append(h / log(Double(f.count)))
                }
            }
        }
        return hs.isEmpty ? 0 : hs.reduce(0, +) / Double(hs.count)
    }

    static func heatRows(_ stats: [String: Any]) -> ([String], [[Double]]) {
        var rows: [String] = [], vals: [[Double]] = []
        for label in stats.keys.sorted() {
            let layers = (stats[label] as? [String: Any]) ?? [:]
            for layer in layers.keys.sorted(by: { Int($0) ?? 0 < Int($1) ?? 0 }) {
                let groups = (layers[layer] as? [String: Any]) ?? [:]
                for g in groups.keys.sorted() {
                    if let f = (groups[g] as? [String: Any])?["fraction"] as? [Double] {
                        rows.append("\(label) L\(layer) \(g.uppercased())"); vals.append(f)
                    }
                }
            }
        }
        return (rows, vals)
    }
}
