import Foundation

/// Setting up a dense model for pretraining from scratch (`mixmoe pretrain`).
public enum Pretraining {
    /// `config` with the tokenizer's vocabulary size, BOS and EOS ids, and a context of at least
    /// `seq` positions. Returns the config and the EOS id appended after every text segment.
    public static func config(_ config: ModelConfig, tokenizer tok: BPETokenizer, seq: Int, file: String) throws -> (ModelConfig, Int32?) {
        var cfg = config
        cfg.vocabSize = tok.vocabSize
        cfg.bosTokenId = tok.prefixIds.first.map(Int.init)
        let eos = tok.id("<|end_of_text|>") ?? tok.id("<|endoftext|>") ?? tok.id("</s>")
        cfg.eosTokenIds = eos.map { [Int($0)] } ?? []
        cfg.maxPositionEmbeddings = max(cfg.maxPositionEmbeddings, seq)
        try cfg.validate(file: file)
        return (cfg, eos)
    }

    /// Weights to continue pretraining from: the model at `dir`, which must have `config`'s shape.
    public static func initialModel(from dir: URL, matching config: ModelConfig) throws -> DecoderModel {
        let m = try DecoderModel.load(directory: dir)
        let a = m.config, b = config
        for (field, x, y) in [
            ("vocab_size", a.vocabSize, b.vocabSize), ("hidden_size", a.hiddenSize, b.hiddenSize),
            ("intermediate_size", a.intermediateSize, b.intermediateSize),
            ("num_hidden_layers", a.numHiddenLayers, b.numHiddenLayers),
        ] where x != y {
            throw ModelError.config(
                file: ModelDirectory(dir).config.path, field: field,
                expected: "\(y) as in --config (got \(x))")
        }
        return m
    }
}
