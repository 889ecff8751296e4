import ArgumentParser
import Foundation
import MixMoE
import MixMoECommandLine

struct Experiment: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one of the paper's experiments and write reports/NAME.md, .json and figures.",
        discussion: "NAME: " + ExperimentName.allCases.map(\.rawValue).joined(separator: ", ")
            + ". Budget preset: \(Budget.experiments.stage1Steps) + \(Budget.experiments.stage2Steps) steps of "
            + "\(Budget.experiments.shared.batchTokens) tokens, lr \(Budget.experiments.lr1) / \(Budget.experiments.lr2).")

    @Argument(help: "Experiment name.") var name: ExperimentName
    @Option(help: "Comma-separated seeds (mean and spread are reported).") var seeds: String = "0"
    @Option(help: "Folder for the reports.") var reports: String = "reports"
    @Option(help: "Folder of finished runs reused across experiments (same code, base weights, data, method, options, budget and seed).")
    var cache: String = "runs/experiments/cache"
    @Flag(help: "Train every run again instead of reusing finished ones.") var noCache = false
    @Flag(help: "Build the report from the run cache alone: runs it lacks are listed as missing, not trained.") var cachedOnly = false
    @Option(help: "A test corpus to use instead of the corpus folder's test split (repeatable; TSV, Moses pair, ALMA JSON/JSONL).") var test: [String] = []
    @Option(
        help: "Run only the variants of these methods (comma-separated: \(Method.allCases.map(\.rawValue).joined(separator: ", "))); default: all."
    )
    var methods: String?
    @Option(
        help: "A method's own peak learning rate(s), replacing --lr2 (or --lr1/--lr2) for it: METHOD=LR2 or METHOD=LR1/LR2 (repeatable; e.g. sft=5e-4)."
    )
    var methodLr: [String] = []
    @Option(help: "transfer: the languages whose pair with English stage 2 trains on, one at a time (comma-separated; default: every one).")
    var pairs: String?
    @OptionGroup var corpus: CorpusOptions
    @OptionGroup var budget: BudgetOptions
    @OptionGroup var compute: ComputeOptions

    /// The experiment's variants, restricted to `--methods`.
    func selectedVariants() throws -> [Variant] {
        guard let methods else { return name.variants }
        let wanted = try methods.split(separator: ",").map { s -> Method in
            guard let m = Method(rawValue: String(s)) else {
                throw ValidationError("--methods: '\(s)' is not a method (expected one of \(Method.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            return m
        }
        let vs = name.variants.filter { wanted.contains($0.method) }
        guard !vs.isEmpty else { throw ValidationError("--methods: experiment \(name.rawValue) has no variant of \(methods)") }
        return vs
    }

    func validate() throws {
        if cachedOnly && noCache { throw ValidationError("--cached-only and --no-cache contradict each other: give one") }
        if cachedOnly && (name == .transfer || name == .upcycling) {
            throw ValidationError("--cached-only: \(name.rawValue) is a study, not a comparison of cached runs")
        }
    }

    func run() async throws {
        try await compute.run {
            let variants = try selectedVariants()
            let seedList = try seeds.split(separator: ",").map { s -> UInt64 in
                guard let v = UInt64(s) else { throw ValidationError("--seeds: '\(s)' is not a number") }
                return v
            }
            let b = try budget.budget(.experiments)
            let rates = try methodLr.map { try MethodLearningRate(parsing: $0) }
            let t0 = monotonicSeconds()
            let data = try ExperimentData.load(
                corpus.corpus, scratch: URL(fileURLWithPath: "runs/experiments/\(name.rawValue)"),
                monoBytes: corpus.monoBytes, test: test.isEmpty ? nil : test)
            let (m, tok) = try corpus.baseModel()
            var setup = ExperimentSetup(
                data: corpus.data, model: corpus.model, budget: b, testSegments: corpus.testSegments,
                monoBytes: corpus.monoBytes, test: test.isEmpty ? nil : test, seeds: seedList,
                methods: methods == nil ? nil : variants.map(\.method), threads: compute.threads)
            setup.methodLearningRates = rates.isEmpty ? nil : rates
            let log: (String) -> Void = { printErr(String(format: "[%6.1f min] ", (monotonicSeconds() - t0) / 60) + $0) }
            // the studies that are not comparisons of variants: one MethodRunner on the first seed
            func studyRunner() throws -> MethodRunner {
                var b0 = b
                b0.seed = seedList.first ?? 0
                return try MethodRunner(base: m, tokenizer: tok, monoFiles: data.mono, parallel: data.train, budget: b0, log: log)
            }
            func writeStudy<T: Encodable>(_ md: String, _ rows: T, figures: [String: String] = [:]) throws {
                let dir = URL(fileURLWithPath: reports)
                for (file, svg) in figures { try AtomicFile.write(svg, to: dir.appendingPathComponent(file)) }
                try AtomicFile.write(md, to: dir.appendingPathComponent("\(name.rawValue).md"))
                let enc = JSONEncoder()
                enc.outputFormatting = [.prettyPrinted, .sortedKeys]
                try AtomicFile.write(enc.encode(rows), to: dir.appendingPathComponent("\(name.rawValue).json"))
                print(md, terminator: "")
            }
            if name == .upcycling {
                let rows = try UpcyclingStudy(runner: try studyRunner(), dev: data.dev).run(stage1Budgets: [b.stage1Steps / 4, b.stage1Steps])
                try writeStudy(UpcyclingStudy.markdown(rows, setup: setup, wall: monotonicSeconds() - t0), rows)
                return
            }
            if name == .transfer {
                let langs = pairs.map { $0.split(separator: ",").map(String.init) } ?? data.train.map(\.langA).filter { $0 != "en" }
                let runner = try studyRunner()
                var study = TransferStudy(runner: runner, test: data.test, segments: corpus.testSegments)
                study.log = log
                if !noCache {
                    // finished rows are kept beside the run cache, so a killed study resumes
                    let fp = try RunCache.fingerprint(
                        base: m, monoStream: runner.monoStream, examples: runner.examples, test: data.test,
                        testSegments: corpus.testSegments, dev: data.dev)
                    let key = try TransferStudy.key(fingerprint: fp, budget: runner.budget, threads: Parallel.threads)
                    study.checkpoint = URL(fileURLWithPath: cache).appendingPathComponent(key + ".json")
                }
                let rows = try study.run(pairs: langs)
                let figs = TransferStudy.figures(rows)
                try writeStudy(
                    TransferStudy.markdown(rows, setup: setup, wall: monotonicSeconds() - t0), rows,
                    figures: ["transfer-stage1.svg": figs.stage1, "transfer-stage2.svg": figs.stage2])
                return
            }
            let runner = ExperimentRunner(
                name: name, baseModel: m, tokenizer: tok, monoFiles: data.mono, monoDev: data.dev, train: data.train,
                test: data.test, budget: b, seeds: seedList, testSegments: corpus.testSegments, log: log)
            if !noCache { runner.cache = RunCache(directory: URL(fileURLWithPath: cache)) }
            runner.methodLearningRates = rates
            runner.cachedOnly = cachedOnly
            let results = try runner.run(variants)
            if cachedOnly {
                setup.cachedOnly = true
                setup.missingRuns = runner.missing
                guard !results.isEmpty else {
                    throw ValidationError("--cached-only: none of the runs is in the cache \(cache) (missing: \(runner.missing.joined(separator: ", ")))")
                }
            }
            // the references of every direction's test segments, for the significance marks
            var references: [String: [String]] = [:]
            for b in data.test { for d in b.directions { references[d.description] = Array(b.segments(d).prefix(corpus.testSegments)).map(\.tgt) } }
            let md = try ExperimentReport.write(
                name: name, results: results, setup: setup, wall: monotonicSeconds() - t0, references: references,
                to: URL(fileURLWithPath: reports))
            print(md, terminator: "")
        }
    }
}

struct Baseline: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train one method (a baseline or Mix-MoE) from a base model with the experiments' data and budget, and save it.",
        discussion: "METHOD: " + Method.allCases.map(\.rawValue).joined(separator: ", "))

    @Argument(help: "Method.") var method: Method
    @Option(help: "Output model directory.") var out: String
    @Option(help: "Seed of the data order and of new weights (routers, adapters).") var seed: UInt64 = 0
    @OptionGroup var corpus: CorpusOptions
    @OptionGroup var budget: BudgetOptions
    @OptionGroup var moe: MoEOptionGroup
    @Option(
        help:
            "Evaluate the loss on the dev split's pairs every N steps of each stage (and at its start and end); printed and written to OUT/dev_loss.json. 0: never."
    )
    var evalEvery = 0
    @Option(help: "Dev pairs per direction for --eval-every.") var devPairs = 20
    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        guard evalEvery >= 0 else { throw ValidationError("--eval-every must be at least 0") }
        guard devPairs >= 1 else { throw ValidationError("--dev-pairs must be at least 1") }
    }

    func run() async throws {
        try await compute.run {
            let dst = URL(fileURLWithPath: out)
            let b = try budget.budget(.experiments, seed: seed)
            let data = try ExperimentData.load(corpus.corpus, scratch: dst.appendingPathComponent("data"), monoBytes: corpus.monoBytes)
            let (m, tok) = try corpus.baseModel()
            let runner = try MethodRunner(
                base: m, tokenizer: tok, monoFiles: data.mono, parallel: data.train, budget: b,
                moe: moe.options
            ) { printErr($0) }
            if evalEvery > 0 {
                runner.dev = DevLoss.build(
                    bitexts: try corpus.corpus.bitexts(.dev), perDirection: devPairs, tokenizer: tok, eos: try m.config.trainingEOS(),
                    maxTokens: b.shared.seq)
                runner.evalEvery = evalEvery
            }
            let trained = try runner.run(method)
            try trained.save(directory: dst)
            if evalEvery > 0 {
                try DevLossMonitor.write(runner.devCurve, to: ModelDirectory(dst).devLoss)
            }
            try HFDirectory.copyTokenizer(from: URL(fileURLWithPath: corpus.model), to: dst)
            printErr("wrote \(out)")
        }
    }
}
