import ArgumentParser
import Foundation
import MixMoE
import MixMoECommandLine

struct Forward: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a model on token ids and print its logits as JSON: {\"logits\": [[...], ...]}.")

    @OptionGroup var model: ModelOption
    @Option(help: "Comma-separated token ids, e.g. 1,2,3.") var ids: String
    @OptionGroup var compute: ComputeOptions

    func run() async throws {
        try await compute.run {
            let tokens = try ids.split(separator: ",").map { s -> Int32 in
                guard let v = Int32(s.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError("--ids: '\(s)' is not an integer token id")
                }
                return v
            }
            guard !tokens.isEmpty else { throw ValidationError("--ids is empty") }
            let m = try model.load()
            try m.setBatch(ids: tokens, batch: 1, seq: tokens.count)
            m.forward(batch: 1, seq: tokens.count)
            let V = m.config.vocabSize
            var out = "{\"logits\": ["
            out.reserveCapacity(tokens.count * V * 12)
            for t in 0..<tokens.count {
                out += t == 0 ? "[" : ", ["
                for j in 0..<V {
                    if j > 0 { out += ", " }
                    out += "\(m.logits.ptr[t * V + j])"
                }
                out += "]"
            }
            out += "]}"
            print(out)
        }
    }
}

struct Generate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Continue token-id prompts, greedy or beam search, without a tokenizer or a prompt template.",
        discussion: """
            Reads one prompt per line of --prompts (or stdin) as a JSON array of token ids and prints one \
            JSON line per prompt, in input order: {"ids": [...], "log_prob": ...} (the generated ids, with \
            the stop token that ended them; log_prob is the beam's summed log-probability, 0 for greedy). \
            For comparing decoders token for token (e.g. with CTranslate2's generate_batch).
            """)

    @OptionGroup var model: ModelOption
    @Option(help: "A file of prompts (one JSON array of token ids per line); default: stdin.") var prompts: String?
    @Option(help: "Comma-separated stop token ids (default: the model's eos_token_id).") var stopIds: String?
    @OptionGroup var search: SearchOptions
    @OptionGroup var compute: ComputeOptions

    func run() async throws {
        try await compute.run {
            try search.validate()
            let name = prompts ?? "stdin"
            let lines =
                try prompts.map { try readLines(URL(fileURLWithPath: $0)) }
                ?? String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self).components(separatedBy: "\n")
            var ids: [[Int32]] = []
            for (i, line) in lines.enumerated() {
                let l = line.trimmingCharacters(in: .whitespaces)
                guard !l.isEmpty else { continue }
                guard let p = try? JSONDecoder().decode([Int32].self, from: Data(l.utf8)), !p.isEmpty else {
                    throw DataError.malformed(file: name, line: i + 1, expected: "a non-empty JSON array of token ids, e.g. [1, 2, 3]")
                }
                ids.append(p)
            }
            let m = try model.load()
            var stops = Set(m.config.eosTokenIds.map(Int32.init))
            if let stopIds {
                stops = try Set(
                    stopIds.split(separator: ",").map { s -> Int32 in
                        guard let v = Int32(s.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("--stop-ids: '\(s)' is not a token id") }
                        return v
                    })
            }
            if let bad = ids.first(where: { $0.count >= m.config.maxPositionEmbeddings }) {
                throw ModelError.contextOverflow(what: "a prompt", tokens: bad.count + 1, limit: m.config.maxPositionEmbeddings)
            }
            let g = Generator(model: m, stopTokens: stops)
            let caps = ids.map { min(search.maxNewTokens, m.config.maxPositionEmbeddings - $0.count) }
            let out: [(tokens: [Int32], logProb: Double)]
            if search.beam > 1 {
                out = try g.beamSearch(ids, maxNew: caps, beams: search.beam, lengthPenalty: search.lengthPenalty, segments: search.batch)
            } else {
                out = try g.greedy(ids, maxNew: caps, slots: search.batch).map { ($0, 0) }
            }
            for o in out { print("{\"ids\": [\(o.tokens.map(String.init).joined(separator: ", "))], \"log_prob\": \(o.logProb)}") }
        }
    }
}

struct Init: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a randomly initialised dense model (Hugging Face layout) for a named config or a config.json.")

    @Option(help: ArgumentHelp(namedConfigHelp)) var config: String
    @Option(help: "Output model directory.") var out: String
    @Option(help: "Random seed for the initial weights.") var seed: UInt64 = 0
    @Option(help: "A tokenizer.json to copy into the model directory (its vocabulary must fit vocab_size).") var tokenizer: String?

    func run() async throws {
        try await reportingErrors {
            let m = DecoderModel(config: try ModelConfig.resolve(config), seed: seed)
            let dst = URL(fileURLWithPath: out)
            if let tokenizer {  // checked before anything is written
                let tok = try BPETokenizer.load(URL(fileURLWithPath: tokenizer))
                try m.checkTokenizer(tok, file: tokenizer)
            }
            try m.save(directory: dst)
            if let tokenizer {
                try HFDirectory.writeTokenizer(Data(contentsOf: URL(fileURLWithPath: tokenizer)), to: dst)
            }
            printErr("wrote \(out) (\(m.store.count) parameters)")
        }
    }
}
