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
