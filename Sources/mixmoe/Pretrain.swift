import ArgumentParser
import Foundation
import MixMoE
import MixMoECommandLine

struct Pretrain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a dense Llama-architecture model from scratch (or continue one) on monolingual text (packed sequences).")

    @Option(help: ArgumentHelp(namedConfigHelp + " vocab_size is set from the tokenizer.")) var config: String
    @Option(help: "tokenizer.json used to tokenise the text (copied into the output).") var tokenizer: String
    @Option(help: "Output model directory (Hugging Face layout).") var out: String
    @Option(help: "Continue pretraining from this model directory's weights (fresh optimiser and schedule) instead of random weights.") var initFrom: String?
    @Option(help: "Windows of the data order already consumed (e.g. by the run --init-from continues); training starts there, so no data repeats.")
    var dataStart: Int = 0
    @OptionGroup var train: TrainingOptions
    @OptionGroup var run: RunOptions
    @OptionGroup var compute: ComputeOptions
    @Argument(help: "Text files, one segment per line (or JSON lines {\"text\": ...}).") var files: [String]

    func validate() throws {
        guard !files.isEmpty else { throw ValidationError("give at least one text file") }
    }

    func run() async throws {
        try await compute.run(distributed: true) {
            let settings = try train.settings(defaultLR: 1e-3)
            let tok = try BPETokenizer.load(URL(fileURLWithPath: tokenizer))
            let (cfg, eos) = try Pretraining.config(try ModelConfig.resolve(config), tokenizer: tok, seq: settings.seq, file: config)
            let t0 = monotonicSeconds()
            let stream = try PackedDataset.tokenize(files: files.map { URL(fileURLWithPath: $0) }, tokenizer: tok, eos: eos) {
                printErr("tokenised \($0): \($1) tokens")
            }
            let data = PackedDataset(tokens: stream, seq: settings.seq, seed: settings.seed)
            guard data.windowCount > 0 else { throw DataError.empty(files.joined(separator: ", ")) }
            let seqsPerStep = max(1, settings.batchTokens / settings.seq)
            printErr(
                String(
                    format: "data: %d tokens, %d windows of %d; %d sequences per step (%.2f epochs); tokenising took %.1f s",
                    stream.count, data.windowCount, settings.seq, seqsPerStep,
                    Double(settings.steps * seqsPerStep) / Double(data.windowCount), monotonicSeconds() - t0))
            if try train.planMemory(config: cfg, freeze: .full, settings: settings) { return }
            let model =
                try initFrom.map { try Pretraining.initialModel(from: URL(fileURLWithPath: $0), matching: cfg) }
                ?? DecoderModel(config: cfg, seed: settings.seed)
            if let initFrom { printErr("continuing from \(initFrom); data starts at window \(dataStart)") }
            data.seek(dataStart)
            printErr(
                "model: \(model.store.count) parameters (\(cfg.numHiddenLayers) layers, d=\(cfg.hiddenSize), ff=\(cfg.intermediateSize), vocab=\(cfg.vocabSize))"
            )
            let outURL = URL(fileURLWithPath: out)
            let record = [
                "command": "pretrain", "config": try sortedJSON(cfg), "threads": String(compute.threads),
                "tokenizer": try Checkpoint.fnv1a(URL(fileURLWithPath: tokenizer)), "data": try fileHashes(files),
                "init_from": try initFrom.map { try DecoderModel.weightsHash(directory: URL(fileURLWithPath: $0)) } ?? "random",
                "data_start": String(dataStart),
            ]
            let training = TrainingRun(model: model, settings: settings, source: data, record: record)
            run.configure(training, out: outURL)
            let start = monotonicSeconds()
            let log = try training.run()
            guard training.collective.isRoot else { return }  // rank 0 writes the model
            try ModelDirectory(outURL).writeTrainedModel(
                model, tokenizer: .file(URL(fileURLWithPath: tokenizer)), log: log,
                record: training.record.merging(["data_end": String(data.cursor)]) { a, _ in a })
            printErr(String(format: "wrote %@ (%d steps, %.1f min; data cursor %d)", out, settings.steps, (monotonicSeconds() - start) / 60, data.cursor))
        }
    }
}
