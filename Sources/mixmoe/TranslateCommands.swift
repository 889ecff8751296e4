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
            let d = try Translator.direction(from: from, to: to)
            let lines = try readInput(nil)
            if dryRun { return print(try decode.memoryPlan(model, sources: lines, d).report("memory plan"), terminator: "") }
            let bar = ProgressBar()
            let (out, summary) = try decode.translator(model).translate(lines: lines, d, source: "stdin") { bar.update("translating", $0, lines.count) }
            FileHandle.standardOutput.write(Data((out.joined(separator: "\n") + (out.isEmpty ? "" : "\n")).utf8))
            printErr(summary)
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
            guard metric != .meteor else { throw ValidationError("paired tests are for bleu, chrf, chrf++ and ter (as in sacreBLEU)") }
        } else {
            guard hyps.count <= 1 else { throw ValidationError("give one hypothesis file (or several with --paired-bs / --paired-ar)") }
        }
        if let n = pairedN, n < 1 { throw ValidationError("--paired-n must be at least 1") }
    }

    /// The metric the options describe.
    func corpusMetric() throws -> CorpusMetric {
        CorpusMetric(
            metric, tokenize: tokenize ?? Evaluation.bleuTokenizer(target: targetLang ?? ""),
            ter: TEROptions(normalized: terNormalized, noPunct: terNoPunct, asianSupport: terAsianSupport, caseSensitive: terCaseSensitive),
            meteor: metric == .meteor ? Meteor(wordnet: try WordNet()) : nil)
    }

    func run() async throws {
        try await reportingErrors {
            let refs = try readLines(URL(fileURLWithPath: ref))
            let systems = try (hyps.isEmpty ? [nil] : hyps.map(Optional.some)).map { f in
                (name: f ?? "stdin", hypotheses: try Evaluation.aligned(readInput(f), file: f ?? "stdin", references: refs, referenceFile: ref))
            }
            let m = try corpusMetric()
            let test: PairedTest? = pairedBs ? .bootstrap : pairedAr ? .approximateRandomization : nil
            guard let test else { return emitJSON(m.score(hypotheses: systems[0].hypotheses, references: refs)) }
            emitJSON(test.report(metric: m, named: metric.rawValue, references: refs, systems: systems, samples: pairedN))
        }
    }
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
            print(try Evaluation.writeReport(rs, to: outURL), terminator: "")
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
