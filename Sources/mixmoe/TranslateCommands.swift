import ArgumentParser
import Foundation
import MixMoE

/// Options shared by commands that decode.
struct DecodeOptions: ParsableArguments {
    @Option(help: "Beam size (1 = greedy).")
    var beam: Int = 1
    @Option(help: "Beam length penalty alpha: score = log p / length^alpha.")
    var lengthPenalty: Double = 1
    @Option(help: "Prompts decoded together (greedy).")
    var batch: Int = 8
    @Option(help: "At most this many generated tokens per source token (plus 10).")
    var maxRatio: Double = 2
    @Option(help: "tokenizer.json (default: the model directory's).")
    var tokenizer: String?

    func translator(model dir: String) throws -> Translator {
        guard beam >= 1, batch >= 1 else { throw ValidationError("--beam and --batch must be at least 1") }
        let (m, tok) = try DecoderModel.loadWithTokenizer(directory: URL(fileURLWithPath: dir), tokenizer: tokenizer)
        let t = Translator(model: m, tokenizer: tok)
        t.beams = beam; t.lengthPenalty = lengthPenalty; t.batchSize = batch; t.maxRatio = maxRatio
        return t
    }
}

/// A one-line progress bar on stderr, only when stderr is a terminal.
struct ProgressBar {
    let enabled = isatty(STDERR_FILENO) != 0
    func update(_ label: String, _ done: Int, _ total: Int) {
        guard enabled, total > 0 else { return }
        let w = 30, k = w * done / total
        FileHandle.standardError.write(Data("\r\(label) [\(String(repeating: "=", count: k))\(String(repeating: " ", count: w - k))] \(done)/\(total)".utf8))
        if done == total { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

func direction(_ from: String, _ to: String) throws -> Direction {
    guard let d = Direction("\(from)-\(to)") else {
        throw ValidationError("unknown language pair \(from)-\(to); known codes: \(Languages.names.keys.sorted().joined(separator: ", "))")
    }
    return d
}

struct Translate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Translate source lines from stdin; one translation per line on stdout, in order.")

    @Option(help: "Model directory.")
    var model: String
    @Option(help: "Source language code (e.g. de).")
    var from: String
    @Option(help: "Target language code (e.g. en).")
    var to: String
    @OptionGroup var decode: DecodeOptions
    @OptionGroup var compute: ComputeOptions

    func run() async throws {
        try compute.apply()
        try await reportingErrors {
            let d = try direction(from, to)
            let t = try decode.translator(model: model)
            var lines: [String] = []
            while let l = readLine(strippingNewline: true) { lines.append(l) }
            let bar = ProgressBar()
            let out = t.translate(lines, d) { bar.update("translating", $0, lines.count) }
            FileHandle.standardOutput.write(Data((out.joined(separator: "\n") + (out.isEmpty ? "" : "\n")).utf8))
        }
    }
}

struct Score: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score hypotheses against references as sacreBLEU 2.x does; prints {\"name\", \"score\", \"signature\"} as JSON.")

    @Option(help: "bleu, chrf or chrf++.")
    var metric: String = "bleu"
    @Option(help: "Reference file, one segment per line.")
    var ref: String
    @Option(help: "BLEU tokenizer: 13a, zh, intl, char or none (default: zh for --target-lang zh, else 13a).")
    var tokenize: String?
    @Option(help: "Target language code (chooses the default BLEU tokenizer).")
    var targetLang: String?
    @Argument(help: "Hypothesis file (default: stdin).")
    var hyp: String?

    func run() async throws {
        try await reportingErrors {
            let refs = try readLines(URL(fileURLWithPath: ref))
            var hyps: [String]
            if let hyp { hyps = try readLines(URL(fileURLWithPath: hyp)) } else {
                hyps = []
                while let l = readLine(strippingNewline: true) { hyps.append(l) }
            }
            guard hyps.count == refs.count else {
                throw DataError.malformed(file: hyp ?? "stdin", line: min(hyps.count, refs.count) + 1,
                                          expected: "as many lines as the reference \(ref) (\(refs.count)); got \(hyps.count)")
            }
            let s: MetricScore
            switch metric {
            case "bleu":
                let tok: SacreTokenizer
                if let t = tokenize {
                    guard let tt = SacreTokenizer(rawValue: t) else { throw ValidationError("--tokenize must be 13a, zh, intl, char or none") }
                    tok = tt
                } else { tok = Evaluation.bleuTokenizer(target: targetLang ?? "") }
                s = Metrics.bleu(hypotheses: hyps, references: refs, tokenize: tok)
            case "chrf": s = Metrics.chrf(hypotheses: hyps, references: refs)
            case "chrf++": s = Metrics.chrf(hypotheses: hyps, references: refs, wordOrder: 2)
            default: throw ValidationError("--metric must be bleu, chrf or chrf++")
            }
            emitJSON(s.json)
        }
    }
}

struct Evaluate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Translate every direction of test corpora and write a per-direction table (BLEU, chrF, chrF++, segments, time) as Markdown and JSON, plus the hypotheses.")

    @Option(help: "Model directory.")
    var model: String
    @Option(help: "Output folder for report.md, report.json and hyp.SRC-TGT.txt (default: MODEL/eval).")
    var out: String?
    @Option(help: "Only these directions (comma-separated, e.g. de-en,en-de).")
    var directions: String?
    @Option(help: "Use at most this many segments per direction.")
    var maxSegments: Int?
    @OptionGroup var decode: DecodeOptions
    @OptionGroup var compute: ComputeOptions
    @Argument(help: "Test corpora (TSV, Moses pair A.xx,B.yy, or ALMA JSON/JSONL).")
    var files: [String]

    func run() async throws {
        try compute.apply()
        try await reportingErrors {
            guard !files.isEmpty else { throw ValidationError("give at least one test corpus") }
            let bitexts = try files.map { try Corpus.readBitext($0) }  // bad data fails before the model loads
            let t = try decode.translator(model: model)
            let dirs = try parseDirections(directions)
            let outURL = URL(fileURLWithPath: out ?? URL(fileURLWithPath: model).appendingPathComponent("eval").path)
            let bar = ProgressBar()
            let rs = try Evaluation.run(t, bitexts: bitexts, directions: dirs, maxSegments: maxSegments, hypDir: outURL) { d, k, n in
                bar.update(d.description, k, n)
            }
            let md = Evaluation.markdown(rs)
            try AtomicFile.write(md, to: outURL.appendingPathComponent("report.md"))
            let enc = JSONEncoder(); enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            try AtomicFile.write(enc.encode(rs), to: outURL.appendingPathComponent("report.json"))
            print(md, terminator: "")
        }
    }
}

func parseDirections(_ s: String?) throws -> Set<Direction>? {
    guard let s else { return nil }
    return Set(try s.split(separator: ",").map { p in
        guard let d = Direction(String(p)) else { throw ValidationError("--directions: '\(p)' is not like de-en") }
        return d
    })
}
