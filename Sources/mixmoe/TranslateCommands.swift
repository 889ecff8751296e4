import ArgumentParser
import Foundation
import MixMoE
import MixMoECommandLine

struct Translate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Translate source lines from stdin; one translation per line on stdout, in order.")

    @OptionGroup var model: TranslatorModelOption
    @Option(help: "Source language code (e.g. de).") var from: String
    @Option(help: "Target language code (e.g. en).") var to: String
    @OptionGroup var decode: DecodeOptions
    @Flag(help: "Print the memory plan (weights, KV cache, prefill activations) for this input and exit without loading the weights.")
    var dryRun = false
    @OptionGroup var compute: ComputeOptions

    func run() async throws {
        try await compute.run {
            guard let d = Direction("\(from)-\(to)") else {
                throw ValidationError("unknown language pair \(from)-\(to); known codes: \(Languages.names.keys.sorted().joined(separator: ", "))")
            }
            let lines = try readInput(nil)
            if dryRun {
                print(try decode.memoryPlan(model, sources: lines, d).report("memory plan"), terminator: "")
                return
            }
            let t = try decode.translator(model)
            let bar = ProgressBar()
            let out: [String]
            let start = monotonicSeconds()
            do {
                out = try t.translate(lines, d) { bar.update("translating", $0, lines.count) }
            } catch let e as ModelError {
                throw DataError.malformed(
                    file: "stdin", line: 0,
                    expected: "lines that fit the model: " + e.localizedDescription.trimmingCharacters(in: CharacterSet(charactersIn: ".")))
            }
            FileHandle.standardOutput.write(Data((out.joined(separator: "\n") + (out.isEmpty ? "" : "\n")).utf8))
            let secs = monotonicSeconds() - start
            printErr(
                String(
                    format: "translated %d segments (%d generated tokens) in %.3f s, model loaded before: %.1f segments/s, %.1f generated tokens/s",
                    out.count, t.generatedTokens, secs, Double(out.count) / max(secs, 1e-9), Double(t.generatedTokens) / max(secs, 1e-9))
                    + "; \(t.generator.stats)")
        }
    }
}

struct Score: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score hypotheses against references as sacreBLEU 2.x does; prints {\"name\", \"score\", \"signature\"} as JSON.",
        discussion: """
            With --paired-bs or --paired-ar, the files are BASELINE SYSTEM...: each system is tested against the baseline with \
            sacreBLEU's resamples (seed 12345 or SACREBLEU_SEED) and the output is {"test", "metric", "systems": [{"name", "score", \
            "mean", "ci", "p_value"}, ...]} (baseline first, p_value null for it).
            """)

    @Option(help: "bleu, chrf, chrf++, ter or meteor (NLTK's, in [0, 1]; needs Debian's wordnet-base).") var metric: MetricName = .bleu
    @Option(help: "Reference file, one segment per line.") var ref: String
    @Option(help: "BLEU tokenizer: 13a, zh, intl, char or none (default: zh for --target-lang zh, else 13a).") var tokenize: SacreTokenizer?
    @Option(help: "Target language code (chooses the default BLEU tokenizer).") var targetLang: String?
    @Flag(help: "TER: Tercom's normalisation (punctuation split, XML entities).") var terNormalized = false
    @Flag(help: "TER: remove punctuation.") var terNoPunct = false
    @Flag(help: "TER: do not lower-case.") var terCaseSensitive = false
    @Flag(help: "TER: split CJK characters (with --ter-normalized) and remove CJK punctuation (with --ter-no-punct).") var terAsianSupport = false
    @Flag(help: "Paired bootstrap resampling against the first file (sacreBLEU's --paired-bs).") var pairedBs = false
    @Flag(help: "Paired approximate randomization against the first file (sacreBLEU's --paired-ar).") var pairedAr = false
    @Option(help: "Resamples (bootstrap, default 1000) or trials (randomization, default 10000).") var pairedN: Int?
    @Argument(help: "Hypothesis file (default: stdin); with a paired test: BASELINE SYSTEM...") var hyps: [String] = []

    func validate() throws {
        guard !(pairedBs && pairedAr) else { throw ValidationError("choose one of --paired-bs and --paired-ar") }
        if pairedBs || pairedAr {
            guard hyps.count >= 2 else { throw ValidationError("a paired test needs a baseline and at least one system file") }
        } else {
            guard hyps.count <= 1 else { throw ValidationError("give one hypothesis file (or several with --paired-bs / --paired-ar)") }
        }
        if let n = pairedN, n < 1 { throw ValidationError("--paired-n must be at least 1") }
    }

    func run() async throws {
        try await reportingErrors {
            let refs = try readLines(URL(fileURLWithPath: ref))
            let files: [String?] = hyps.isEmpty ? [nil] : hyps
            let systems = try files.map { f -> (name: String, hypotheses: [String]) in
                let h = try readInput(f)
                guard h.count == refs.count else {
                    throw DataError.malformed(
                        file: f ?? "stdin", line: min(h.count, refs.count) + 1,
                        expected: "as many lines as the reference \(ref) (\(refs.count)); got \(h.count)")
                }
                return (f ?? "stdin", h)
            }
            let m = CorpusMetric(
                metric, tokenize: tokenize ?? Evaluation.bleuTokenizer(target: targetLang ?? ""),
                ter: TEROptions(
                    normalized: terNormalized, noPunct: terNoPunct, asianSupport: terAsianSupport,
                    caseSensitive: terCaseSensitive),
                meteor: metric == .meteor ? Meteor(wordnet: try WordNet()) : nil)
            if metric == .meteor && (pairedBs || pairedAr) {
                throw ValidationError("paired tests are for bleu, chrf, chrf++ and ter (as in sacreBLEU)")
            }
            guard pairedBs || pairedAr else {
                emitJSON(m.score(hypotheses: systems[0].hypotheses, references: refs))
                return
            }
            let test: PairedTest = pairedBs ? .bootstrap : .approximateRandomization
            let results = test.run(metric: m, references: refs, systems: systems, samples: pairedN)
            emitJSON(
                PairedTestReport(
                    test: test.rawValue, metric: metric.rawValue, samples: pairedN ?? test.defaultSamples, seed: Int(PairedTest.defaultSeed),
                    systems: results))
        }
    }
}

/// The line `score --paired-bs/--paired-ar` prints: the test, and each system against the first.
struct PairedTestReport: Encodable {
    var test, metric: String
    var samples, seed: Int
    var systems: [PairedTest.SystemResult]
}

struct Evaluate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Translate every direction of test corpora and write a per-direction table (BLEU, chrF, chrF++, segments, time) as Markdown and JSON, plus the hypotheses."
    )

    @OptionGroup var model: ModelOption
    @Option(help: "Output folder for report.md, report.json and hyp.SRC-TGT.txt (default: MODEL/eval).") var out: String?
    @Option(help: "Only these directions (comma-separated, e.g. de-en,en-de).") var directions: String?
    @Option(help: "Use at most this many segments per direction.") var maxSegments: Int?
    @OptionGroup var decode: DecodeOptions
    @OptionGroup var compute: ComputeOptions
    @Argument(help: "Test corpora (TSV, Moses pair A.xx,B.yy, or ALMA JSON/JSONL).") var files: [String]

    func validate() throws {
        guard !files.isEmpty else { throw ValidationError("give at least one test corpus") }
        if let m = maxSegments, m < 1 { throw ValidationError("--max-segments must be at least 1") }
    }

    func run() async throws {
        try await compute.run {
            let bitexts = try files.map { try Corpus.readBitext($0) }  // bad data fails before the model loads
            let dirs = try Direction.parseList(directions)
            let t = try decode.translator(model)
            let outURL = URL(fileURLWithPath: out ?? ModelDirectory(model.url).eval.path)
            let rs = try evaluateWithProgress(t, bitexts: bitexts, directions: dirs, maxSegments: maxSegments, hypDir: outURL)
            let md = Evaluation.markdown(rs)
            try AtomicFile.write(md, to: outURL.appendingPathComponent("report.md"))
            let enc = JSONEncoder(); enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            try AtomicFile.write(enc.encode(rs), to: outURL.appendingPathComponent("report.json"))
            print(md, terminator: "")
        }
    }
}

/// `Evaluation.run` with a progress bar on stderr and the METEOR column when WordNet is installed
/// (Debian's wordnet-base; without it the column stays empty, with a warning).
func evaluateWithProgress(
    _ t: Translator, bitexts: [Bitext], directions: Set<Direction>? = nil, maxSegments: Int?, hypDir: URL? = nil, keepHypotheses: Bool = false
) throws -> [DirectionResult] {
    let bar = ProgressBar()
    var meteor: Meteor? = nil
    do { meteor = Meteor(wordnet: try WordNet()) } catch { printErr("mixmoe: warning: no METEOR column: \(error.localizedDescription)") }
    return try Evaluation.run(
        t, bitexts: bitexts, directions: directions, maxSegments: maxSegments, hypDir: hypDir, meteor: meteor, keepHypotheses: keepHypotheses
    ) { d, k, n in bar.update(d.description, k, n) }
}
