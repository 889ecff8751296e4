import Foundation

/// One `mixmoe experiment NAME`: load the corpus, train (or take from the run cache) every variant
/// and seed, and write `NAME.md`, `NAME.json` and the figures; or, for the two studies that are not
/// comparisons of variants (`upcycling`, `transfer`), run the study on the first seed.
///
/// The CLI parses options into a job and calls ``run(base:tokenizer:)``; everything else (where the
/// data is cut to, the cache keys, the report files) is decided here.
public struct ExperimentJob {
    public var name: ExperimentName
    /// What the report records: corpus, base model, budget, test segments, seeds, threads, methods.
    public var setup: ExperimentSetup
    /// The corpus the setup names, already opened.
    public var corpus: CorpusFolder
    public var variants: [Variant]
    /// Folder of the reports (`NAME.md`, `NAME.json`, figures).
    public var reports: URL
    /// Folder of finished runs reused across experiments; nil trains every run again.
    public var cache: URL?
    /// Build the report from the cache alone (runs it lacks are listed as missing).
    public var cachedOnly = false
    /// `transfer`: the languages whose pair with English stage 2 trains on (nil: every one).
    public var pairs: [String]?
    /// Progress lines (with the minutes since the start).
    public var log: (String) -> Void = { _ in }

    public init(name: ExperimentName, setup: ExperimentSetup, corpus: CorpusFolder, variants: [Variant], reports: URL, cache: URL?) {
        self.name = name
        self.setup = setup
        self.corpus = corpus
        self.variants = variants
        self.reports = reports
        self.cache = cache
    }

    /// Where the corpus is cut to for this experiment (git-ignored `runs/`).
    public var scratch: URL { URL(fileURLWithPath: "runs/experiments/\(name.rawValue)") }

    /// Runs the experiment on `base` and returns the report's Markdown (also written to `reports`).
    public func run(base: DecoderModel, tokenizer: BPETokenizer) throws -> String {
        let t0 = monotonicSeconds()
        let log: (String) -> Void = { [log] in log(String(format: "[%6.1f min] ", (monotonicSeconds() - t0) / 60) + $0) }
        let data = try ExperimentData.load(corpus, scratch: scratch, monoBytes: setup.monoBytes, test: setup.test)
        func studyRunner() throws -> MethodRunner {
            var b0 = setup.budget
            b0.seed = setup.seeds.first ?? 0
            return try MethodRunner(base: base, tokenizer: tokenizer, monoFiles: data.mono, parallel: data.train, budget: b0, log: log)
        }
        switch name {
        case .upcycling:
            let b = setup.budget
            let rows = try UpcyclingStudy(runner: try studyRunner(), dev: data.dev).run(stage1Budgets: [b.stage1Steps / 4, b.stage1Steps])
            return try writeStudy(UpcyclingStudy.markdown(rows, setup: setup, wall: monotonicSeconds() - t0), rows)
        case .transfer:
            let runner = try studyRunner()
            var study = TransferStudy(runner: runner, test: data.test, segments: setup.testSegments)
            study.log = log
            if let cache {
                // finished rows are kept beside the run cache, so a killed study resumes
                let fp = try RunCache.fingerprint(
                    base: base, monoStream: runner.monoStream, examples: runner.examples, test: data.test,
                    testSegments: setup.testSegments, dev: data.dev)
                let key = try TransferStudy.key(fingerprint: fp, budget: runner.budget, threads: Parallel.threads)
                study.checkpoint = cache.appendingPathComponent(key + ".json")
            }
            let rows = try study.run(pairs: pairs ?? data.train.map(\.langA).filter { $0 != "en" })
            let figs = TransferStudy.figures(rows)
            return try writeStudy(
                TransferStudy.markdown(rows, setup: setup, wall: monotonicSeconds() - t0), rows,
                figures: ["transfer-stage1.svg": figs.stage1, "transfer-stage2.svg": figs.stage2])
        default:
            let runner = ExperimentRunner(
                name: name, baseModel: base, tokenizer: tokenizer, monoFiles: data.mono, monoDev: data.dev, train: data.train,
                test: data.test, budget: setup.budget, seeds: setup.seeds, testSegments: setup.testSegments, log: log)
            runner.cache = cache.map { RunCache(directory: $0) }
            runner.methodLearningRates = setup.methodLearningRates ?? []
            runner.cachedOnly = cachedOnly
            let results = try runner.run(variants)
            var setup = setup
            if cachedOnly {
                setup.cachedOnly = true
                setup.missingRuns = runner.missing
                guard !results.isEmpty else {
                    throw SettingsError.invalid(
                        option: "--cached-only",
                        expected:
                            "the runs in the cache, but none of the runs is in the cache \(cache?.path ?? "-") (missing: \(runner.missing.joined(separator: ", ")))"
                    )
                }
            }
            // the references of every direction's test segments, for the significance marks
            var references: [String: [String]] = [:]
            for b in data.test { for d in b.directions { references[d.description] = Array(b.segments(d).prefix(setup.testSegments)).map(\.tgt) } }
            return try ExperimentReport.write(
                name: name, results: results, setup: setup, wall: monotonicSeconds() - t0, references: references, to: reports)
        }
    }

    /// Writes a study's Markdown, its rows as JSON and its figures; returns the Markdown.
    private func writeStudy<T: Encodable>(_ md: String, _ rows: T, figures: [String: String] = [:]) throws -> String {
        for (file, svg) in figures { try AtomicFile.write(svg, to: reports.appendingPathComponent(file)) }
        try AtomicFile.write(md, to: reports.appendingPathComponent("\(name.rawValue).md"))
        try AtomicFile.writeJSON(rows, to: reports.appendingPathComponent("\(name.rawValue).json"))
        return md
    }
}

extension ExperimentName {
    /// The experiment's variants of the given methods (nil: all of them).
    public func variants(of methods: [Method]?) throws -> [Variant] {
        guard let methods else { return variants }
        let vs = variants.filter { methods.contains($0.method) }
        guard !vs.isEmpty else {
            throw SettingsError.invalid(
                option: "--methods", expected: "a method experiment \(rawValue) has a variant of (none of \(methods.map(\.rawValue).joined(separator: ",")))")
        }
        return vs
    }
}
