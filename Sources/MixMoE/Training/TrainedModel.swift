import Foundation

/// Where the tokenizer of a trained model comes from.
public enum TokenizerOrigin: Sendable {
    /// The `tokenizer.json` of the model directory training started from (if it has one).
    case modelDirectory(URL)
    /// A `tokenizer.json` file (pretraining from scratch).
    case file(URL)
}

extension ModelDirectory {
    /// Writes what every training command leaves in its output directory, in one place: the
    /// weights and `config.json` (with the PyTorch code where transformers lacks the
    /// architecture), the tokenizer with `tokenizer_config.json` and `generation_config.json`,
    /// `train_log.jsonl` and `run.json`. Called by rank 0 only.
    public func writeTrainedModel(_ model: DecoderModel, tokenizer: TokenizerOrigin, log: TrainingLog, record: [String: String]) throws {
        try model.save(directory: url)
        switch tokenizer {
        case .modelDirectory(let dir): try HFDirectory.copyTokenizer(from: dir, to: url)
        case .file(let file): try HFDirectory.writeTokenizer(Data(contentsOf: file), to: url)
        }
        try AtomicFile.write(log.text, to: trainLog)
        try RunRecord.write(record, to: url)
    }
}
