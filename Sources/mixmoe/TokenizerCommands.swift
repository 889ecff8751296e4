import ArgumentParser
import Foundation
import MixMoE
import MixMoECommandLine

struct TokenizerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer", abstract: "Tokenizer tools.", subcommands: [TrainTokenizer.self, InstallTokenizer.self, BenchTokenizer.self])
}

struct InstallTokenizer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install",
        abstract:
            "Put a tokenizer into a model directory with the files transformers and converters read beside it (tokenizer_config.json, generation_config.json).",
        discussion: "Every command that writes a model does this itself; use it for a model directory made elsewhere or an older one.")

    @Option(help: "Model directory (with config.json).") var model: String
    @Option(help: "tokenizer.json to install (default: the directory's own).") var tokenizer: String?

    func run() async throws {
        try await reportingErrors {
            let dir = URL(fileURLWithPath: model)
            let src = tokenizer.map { URL(fileURLWithPath: $0) } ?? ModelDirectory(dir).tokenizer
            let m = try ModelConfig.load(ModelDirectory(dir).config)
            let tok = try BPETokenizer.load(src)
            try m.checkTokenizer(tok, file: src.path)
            try HFDirectory.writeTokenizer(Data(contentsOf: src), to: dir)
            printErr("wrote \(model)/tokenizer.json, tokenizer_config.json, generation_config.json")
        }
    }
}

struct TrainTokenizer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a byte-level BPE tokenizer on text files and write a tokenizer.json that HF tokenizers loads.")

    @Option(help: "Vocabulary size including the 256 byte tokens and the special tokens.") var vocabSize: Int
    @Option(name: .customLong("special"), help: "A special token (repeatable). Default: <|begin_of_text|> <|end_of_text|> <|pad|>.") var special: [String] = []
    @Option(help: "Special token the post-processor puts before every sequence ('' for none). Default: the first special token.") var bos: String?
    @Option(help: "Pre-tokenizer split pattern: llama3, qwen2 or gpt2.") var pattern: SplitPattern = .llama3
    @Option(help: "Read at most this many bytes of each file (0 = all).") var maxBytesPerFile: Int = 0
    @Option(help: "Output tokenizer.json path.") var out: String
    @Argument(help: "Text files, one segment per line (tab-separated fields count as separate texts).") var files: [String]

    func run() async throws {
        try await reportingErrors {
            guard !files.isEmpty else { throw ValidationError("give at least one text file") }
            let pat = pattern
            let specials = special.isEmpty ? ["<|begin_of_text|>", "<|end_of_text|>", "<|pad|>"] : special
            let trainer = BPETrainer(vocabSize: vocabSize, specialTokens: specials, pattern: pat)
            var counts: [String: Int] = [:]
            let t0 = monotonicSeconds()
            for f in files {
                let lines = try readLines(URL(fileURLWithPath: f), maxBytes: maxBytesPerFile > 0 ? maxBytesPerFile : nil)
                for l in lines { for field in l.split(separator: "\t") { trainer.countWords(field, into: &counts) } }
                printErr("counted \(f): \(lines.count) lines, \(counts.count) distinct words so far")
            }
            let result = try trainer.train(wordCounts: counts) { have, want in
                if have % 1000 == 0 { printErr("vocab \(have)/\(want)") }
            }
            let bosToken = bos ?? specials.first
            try BPETokenizer.writeJSON(
                vocab: result.vocab, merges: result.merges, added: result.added, pattern: pat,
                bos: bosToken?.isEmpty == true ? nil : bosToken, to: URL(fileURLWithPath: out))
            printErr(
                String(
                    format: "wrote %@: %d tokens, %d merges in %.1f s", out, result.vocab.count, result.merges.count,
                    monotonicSeconds() - t0))
        }
    }
}

struct Tokenize: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Encode UTF-8 lines from stdin to space-separated token ids (or --decode ids back to text).")

    @Option(help: "Path of tokenizer.json.") var tokenizer: String
    @Flag(help: "Apply the post-processor's special tokens (BOS/EOS).") var addSpecialTokens = false
    @Flag(help: "Read lines of space-separated ids and print their text.") var decode = false

    func run() async throws {
        try await reportingErrors {
            let tok = try BPETokenizer.load(URL(fileURLWithPath: tokenizer))
            var lineNo = 0
            var out = ""
            while let line = readLine(strippingNewline: true) {
                lineNo += 1
                if decode {
                    let ids = try line.split(separator: " ").map { s -> Int32 in
                        guard let v = Int32(s), v >= 0, Int(v) < tok.vocabSize else {
                            throw ValidationError("stdin line \(lineNo): '\(s)' is not a token id below \(tok.vocabSize)")
                        }
                        return v
                    }
                    out += tok.decode(ids) + "\n"
                } else {
                    out += tok.encode(line, addSpecialTokens: addSpecialTokens).map(String.init).joined(separator: " ") + "\n"
                }
                if out.utf8.count > 1 << 16 { FileHandle.standardOutput.write(Data(out.utf8)); out = "" }
            }
            FileHandle.standardOutput.write(Data(out.utf8))
        }
    }
}

struct BenchTokenizer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Encode throughput (MB/s, one thread) over the lines of a file; JSON line on stdout.")

    @Option(help: "Path of tokenizer.json.") var tokenizer: String
    @Option(help: "Timed repetitions (each on a fresh tokenizer, so the word cache starts cold).") var reps: Int = 3
    @Argument(help: "UTF-8 text file.") var file: String

    func run() async throws {
        try await reportingErrors {
            let lines = try readLines(URL(fileURLWithPath: file))
            let bytes = lines.reduce(0) { $0 + $1.utf8.count }
            var times: [Double] = []
            var tokens = 0
            for _ in 0..<reps {
                let tok = try BPETokenizer.load(URL(fileURLWithPath: tokenizer))
                let t0 = monotonicSeconds()
                tokens = 0
                for l in lines { tokens += tok.encode(l).count }
                times.append(monotonicSeconds() - t0)
            }
            emitJSON(
                TokenizerBenchRow(
                    file: file, lines: lines.count, bytes: bytes, tokens: tokens, times: times))
        }
    }
}

/// The line `tokenizer bench` prints (the keys `scripts/bench/bench_tokenizer.py` reads).
struct TokenizerBenchRow: Encodable {
    var name = "tokenizer_encode"
    var implementation = "mixmoe"
    var file: String
    var lines, bytes, tokens: Int
    var medianSeconds, minSeconds, maxSeconds, megabytesPerSecond: Double

    init(file: String, lines: Int, bytes: Int, tokens: Int, times: [Double]) {
        self.file = file
        self.lines = lines
        self.bytes = bytes
        self.tokens = tokens
        (medianSeconds, minSeconds, maxSeconds) = summary(times)
        megabytesPerSecond = Double(bytes) / medianSeconds / 1e6
    }

    enum CodingKeys: String, CodingKey {
        case name = "case"
        case implementation, file, lines, bytes, tokens
        case medianSeconds = "median_s"
        case minSeconds = "min_s"
        case maxSeconds = "max_s"
        case megabytesPerSecond = "mb_per_s"
    }
}
