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

    /// `--methods` as methods (nil: every variant).
    func parsedMethods() throws -> [Method]? {
        try methods.map {
            try $0.split(separator: ",").map { s -> Method in
                guard let m = Method(rawValue: String(s)) else {
                    throw ValidationError("--methods: '\(s)' is not a method (expected one of \(Method.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                return m
            }
        }
    }

    /// The job the options describe.
    func job() throws -> ExperimentJob {
        let seedList = try seeds.split(separator: ",").map { s -> UInt64 in
            guard let v = UInt64(s) else { throw ValidationError("--seeds: '\(s)' is not a number") }
            return v
        }
        let chosen = try parsedMethods()
        let variants = try name.variants(of: chosen)
        let rates = try methodLr.map { try MethodLearningRate(parsing: $0) }
        var setup = ExperimentSetup(
            data: corpus.data, model: corpus.model, budget: try budget.budget(.experiments), testSegments: corpus.testSegments,
            monoBytes: corpus.monoBytes, test: test.isEmpty ? nil : test, seeds: seedList, methods: chosen == nil ? nil : variants.map(\.method),
            threads: compute.threads)
        setup.methodLearningRates = rates.isEmpty ? nil : rates
        var job = ExperimentJob(
            name: name, setup: setup, corpus: corpus.corpus, variants: variants, reports: URL(fileURLWithPath: reports),
            cache: noCache ? nil : URL(fileURLWithPath: cache))
        job.cachedOnly = cachedOnly
        job.pairs = pairs.map { $0.split(separator: ",").map(String.init) }
        job.log = { printErr($0) }
        return job
    }

    func validate() throws {
        if cachedOnly && noCache { throw ValidationError("--cached-only and --no-cache contradict each other: give one") }
        if cachedOnly && (name == .transfer || name == .upcycling) {
            throw ValidationError("--cached-only: \(name.rawValue) is a study, not a comparison of cached runs")
        }
    }

    func run() async throws {
        try await compute.run {
            let job = try job()
            let (m, tok) = try corpus.baseModel()
            print(try job.run(base: m, tokenizer: tok), terminator: "")
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
