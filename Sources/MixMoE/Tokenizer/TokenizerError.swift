import Foundation

/// Errors from reading, writing or training tokenizers; each names the file and the JSON field.
public enum TokenizerError: LocalizedError, Equatable {
    case missingFile(String)
    case invalid(file: String, field: String, expected: String)
    case unsupported(file: String, field: String, value: String, supported: String)

    public var errorDescription: String? {
        switch self {
        case .missingFile(let p):
            return "tokenizer file '\(p)' not found. Hint: pass the tokenizer.json that came with the model."
        case .invalid(let f, let field, let e):
            return "\(f): field '\(field)': expected \(e). Hint: is this a Hugging Face tokenizer.json?"
        case .unsupported(let f, let field, let v, let s):
            return "\(f): \(field) = \(v) is not supported (supported: \(s))."
        }
    }
}

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
