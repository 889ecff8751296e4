import Foundation

/// One `mixmoe pretrain`: a dense model of a given shape trained from random weights (or continued
/// from a model directory's) on monolingual text packed into windows, then saved with its
/// tokenizer, training log and run record. Under `mpirun` every rank trains and rank 0 writes.
public struct PretrainingJob {
    /// The architecture; its vocabulary, BOS/EOS and context are set from the tokenizer.
    public var config: ModelConfig
    /// Where the config came from (a name or a config.json path), for errors.
    public var configSource: String
    public var tokenizer: URL
    /// Text files, one segment per line (or JSON lines `{"text": ...}`).
    public var files: [String]
    public var out: URL
    /// Continue from this model directory's weights (fresh optimiser and schedule).
    public var initFrom: URL?
    /// Windows of the data order already consumed; training starts there, so no data repeats.
    public var dataStart = 0
    public var settings: TrainingSettings
    public var threads: Int
    /// Progress lines.
    public var log: (String) -> Void = { _ in }

    public init(config: ModelConfig, configSource: String, tokenizer: URL, files: [String], out: URL, settings: TrainingSettings, threads: Int) {
        self.config = config
        self.configSource = configSource
        self.tokenizer = tokenizer
        self.files = files
        self.out = out
        self.settings = settings
        self.threads = threads
    }

    /// Tokenises the files, asks `plan` whether to stop before allocating (a dry run prints the
    /// memory plan and returns true), builds the model, lets `configure` set checkpoints and
    /// progress on the run, trains and saves.
    public func run(plan: (ModelConfig) throws -> Bool, configure: (TrainingRun) -> Void) throws {
        let tok = try BPETokenizer.load(tokenizer)
        let (cfg, eos) = try Pretraining.config(config, tokenizer: tok, seq: settings.seq, file: configSource)
        let t0 = monotonicSeconds()
        let stream = try PackedDataset.tokenize(files: files.map { URL(fileURLWithPath: $0) }, tokenizer: tok, eos: eos) { [log] in
            log("tokenised \($0): \($1) tokens")
        }
        let data = PackedDataset(tokens: stream, seq: settings.seq, seed: settings.seed)
        guard data.windowCount > 0 else { throw DataError.empty(files.joined(separator: ", ")) }
        let seqsPerStep = max(1, settings.batchTokens / settings.seq)
        log(
            String(
                format: "data: %d tokens, %d windows of %d; %d sequences per step (%.2f epochs); tokenising took %.1f s",
                stream.count, data.windowCount, settings.seq, seqsPerStep,
                Double(settings.steps * seqsPerStep) / Double(data.windowCount), monotonicSeconds() - t0))
        if try plan(cfg) { return }
        let model = try initFrom.map { try Pretraining.initialModel(from: $0, matching: cfg) } ?? DecoderModel(config: cfg, seed: settings.seed)
        if let initFrom { log("continuing from \(initFrom.path); data starts at window \(dataStart)") }
        data.seek(dataStart)
        log("model: \(model.store.count) parameters (\(cfg.numHiddenLayers) layers, d=\(cfg.hiddenSize), ff=\(cfg.intermediateSize), vocab=\(cfg.vocabSize))")
        let record = [
            "command": "pretrain", "config": try sortedJSON(cfg), "threads": String(threads),
            "tokenizer": try FNV64.file(tokenizer), "data": try fileHashes(files),
            "init_from": try initFrom.map { try DecoderModel.weightsHash(directory: $0) } ?? "random",
            "data_start": String(dataStart),
        ]
        let training = TrainingRun(model: model, settings: settings, source: data, record: record)
        configure(training)
        let start = monotonicSeconds()
        let trainingLog = try training.run()
        guard training.collective.isRoot else { return }  // rank 0 writes the model
        try ModelDirectory(out).writeTrainedModel(
            model, tokenizer: .file(tokenizer), log: trainingLog, record: training.record.merging(["data_end": String(data.cursor)]) { a, _ in a })
        log(String(format: "wrote %@ (%d steps, %.1f min; data cursor %d)", out.path, settings.steps, (monotonicSeconds() - start) / 60, data.cursor))
    }
}
