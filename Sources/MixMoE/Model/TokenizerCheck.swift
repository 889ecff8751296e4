import Foundation

extension ModelConfig {
    /// A tokenizer can drive a model only if every id it produces has an embedding row.
    public func checkTokenizer(_ tok: BPETokenizer, file: String) throws {
        guard tok.vocabSize <= vocabSize else {
            throw TokenizerError.invalid(
                file: file, field: "model.vocab",
                expected: "at most the model's vocab_size \(vocabSize) tokens; this tokenizer has \(tok.vocabSize) (wrong tokenizer for this model?)")
        }
    }
}

extension DecoderModel {
    /// ``ModelConfig/checkTokenizer(_:file:)`` for this model.
    public func checkTokenizer(_ tok: BPETokenizer, file: String) throws { try config.checkTokenizer(tok, file: file) }
}
