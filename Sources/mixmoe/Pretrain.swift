import ArgumentParser
import Foundation
import MixMoE

struct Pretrain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a dense Llama-architecture model from scratch on monolingual text (packed sequences).")

    @Option(help: "Named config (tiny, base, small) or a config.json. vocab_size is set from the tokenizer.")
    var config: String
    @Option(help: "tokenizer.json used to tokenise the text (copied into the output).")
    var tokenizer: String
    @Option(help: "Output model directory (Hugging Face layout).")
    var out: String
    @Option(help: "Peak learning rate (cosine schedule with linear warm-up).")
    var lr: Double = 1e-3
    @OptionGroup var train: TrainOptions
    @OptionGroup var compute: ComputeOptions
    @Argument(help: "Text files, one segment per line.")
    var files: [String]

    func run() async throws {
        try compute.apply()
        try await reportingErrors {
            guard !files.isEmpty else { throw ValidationError("give at least one text file") }
            let tok = try BPETokenizer.load(URL(fileURLWithPath: tokenizer))
            var cfg = try resolveConfig(config)
            cfg.vocabSize = tok.vocabSize
            cfg.bosTokenId = tok.prefixIds.first.map(Int.init)
            let eos = tok.id("<|end_of_text|>") ?? tok.id("<|endoftext|>") ?? tok.id("</s>")
            cfg.eosTokenIds = eos.map { [Int($0)] } ?? []
            cfg.maxPositionEmbeddings = max(cfg.maxPositionEmbeddings, train.seq)
            try cfg.validate(file: config)

            let t0 = monotonicSeconds()
            let stream = try PackedDataset.tokenize(files: files.map { URL(fileURLWithPath: $0) }, tokenizer: tok, eos: eos) {
                printErr("tokenised \($0): \($1) tokens")
            }
            let data = PackedDataset(tokens: stream, seq: train.seq, seed: train.seed)
            guard data.windowCount > 0 else { throw DataError.empty(files.joined(separator: ", ")) }
            let seqsPerStep = max(1, train.batchTokens / train.seq)
            printErr(String(format: "data: %d tokens, %d windows of %d; %d sequences per step (%.2f epochs); tokenising took %.1f s",
                            stream.count, data.windowCount, train.seq, seqsPerStep,
                            Double(train.steps * seqsPerStep) / Double(data.windowCount), monotonicSeconds() - t0))
            let model = DecoderModel(config: cfg, seed: train.seed)
            printErr("model: \(model.store.count) parameters (\(cfg.numHiddenLayers) layers, d=\(cfg.hiddenSize), ff=\(cfg.intermediateSize), vocab=\(cfg.vocabSize))")
            let trainer = Trainer(model: model, schedule: CosineSchedule(peak: lr, totalSteps: train.steps, warmupFraction: train.warmup),
                                  weightDecay: Float(train.weightDecay))
            let start = monotonicSeconds()
            let outURL = URL(fileURLWithPath: out)
            let record = train.runRecord(["command": "pretrain", "config": try sortedJSON(cfg),
                                          "tokenizer": try Checkpoint.fnv1a(URL(fileURLWithPath: tokenizer)),
                                          "data": try fileHashes(files), "lr": String(lr)], threads: compute.threads)
            let log = try train.runLoop(trainer: trainer, source: data, out: outURL, run: record)
            try model.save(directory: outURL)
            try AtomicFile.write(Data(contentsOf: URL(fileURLWithPath: tokenizer)), to: outURL.appendingPathComponent("tokenizer.json"))
            try AtomicFile.write(log, to: outURL.appendingPathComponent("train_log.jsonl"))
            printErr(String(format: "wrote %@ (%d steps, %.1f min)", out, train.steps, (monotonicSeconds() - start) / 60))
        }
    }
}

func formatDuration(_ s: Double) -> String {
    guard s.isFinite else { return "?" }
    let t = Int(s.rounded())
    return t >= 3600 ? String(format: "%dh%02dm", t / 3600, (t % 3600) / 60) : String(format: "%dm%02ds", t / 60, t % 60)
}

/// JSON with sorted keys (JSONEncoder's key order differs between processes).
func sortedJSON<T: Encodable>(_ v: T) throws -> String {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys]
    return String(decoding: try e.encode(v), as: UTF8.self)
}
