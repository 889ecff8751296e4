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
            let lines =
                try prompts.map { try readLines(URL(fileURLWithPath: $0)) }
                ?? String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self).components(separatedBy: "\n")
            let ids = try IdPrompts.parse(lines, name: prompts ?? "stdin")
            let m = try model.load()
            let stops = try stopIds.map { try parseStops($0) } ?? Set(m.config.eosTokenIds.map(Int32.init))
            let out = try Generator(model: m, stopTokens: stops).generate(
                ids, beams: search.beam, lengthPenalty: search.lengthPenalty, maxNew: search.maxNewTokens, batch: search.batch)
            out.forEach { emitJSON($0) }
        }
    }

    /// `--stop-ids` as token ids.
    func parseStops(_ s: String) throws -> Set<Int32> {
        try Set(
            s.split(separator: ",").map { t -> Int32 in
                guard let v = Int32(t.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("--stop-ids: '\(t)' is not a token id") }
                return v
            })
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
