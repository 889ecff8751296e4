import Foundation

/// Errors from reading or writing models. Every message names the file and the field or tensor,
/// says what was expected, and ends with a hint.
public enum ModelError: LocalizedError, Equatable {
    case missingDirectory(String)
    case missingFile(String, hint: String)
    case config(file: String, field: String, expected: String)
    case safetensors(file: String, detail: String)
    case unknownTensor(file: String, name: String)
    case missingTensor(file: String, name: String)
    case tensorShape(file: String, name: String, expected: [Int], got: [Int])
    case unsupported(file: String, field: String, value: String, supported: String)
    /// An input token id the model has no embedding for.
    case tokenOutOfRange(id: Int32, position: Int, vocabSize: Int)
    /// More positions than a KV cache (or the model's context) holds.
    case contextOverflow(what: String, tokens: Int, limit: Int)

    public var errorDescription: String? {
        switch self {
        case .missingDirectory(let p):
            return "model directory '\(p)' does not exist. Hint: pass the folder that holds config.json and model.safetensors."
        case .missingFile(let p, let hint):
            return "'\(p)' not found. Hint: \(hint)"
        case .config(let f, let field, let expected):
            let hint =
                f.hasSuffix(".json")
                ? "compare with a Hugging Face config.json of a Llama or Qwen2 model"
                : "check the command-line options"
            return "\(f): field '\(field)': expected \(expected). Hint: \(hint)."
        case .safetensors(let f, let d):
            return "\(f): not a valid safetensors file: \(d). Hint: the file may be truncated or not safetensors at all; re-export it."
        case .unknownTensor(let f, let n):
            return
                "\(f): unknown tensor '\(n)' (not part of the model that config.json describes). Hint: check the architecture and layer count in config.json."
        case .missingTensor(let f, let n):
            return "\(f): missing tensor '\(n)'. Hint: the checkpoint does not match config.json (tie_word_embeddings, layer count, biases?)."
        case .tensorShape(let f, let n, let e, let g):
            return "\(f): tensor '\(n)' has shape \(g), expected \(e). Hint: check hidden_size, intermediate_size, heads and vocab_size in config.json."
        case .unsupported(let f, let field, let v, let s):
            return "\(f): field '\(field)' = \(v) is not supported (supported: \(s))."
        case .tokenOutOfRange(let id, let p, let v):
            return "token id \(id) at position \(p) is outside the vocabulary (0..<\(v)). Hint: use the tokenizer that came with the model."
        case .contextOverflow(let w, let n, let l):
            return "\(w) needs \(n) positions but holds at most \(l). Hint: shorten or split the input."
        }
    }
}
