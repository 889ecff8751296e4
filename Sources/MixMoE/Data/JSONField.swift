import Foundation

/// Paths of fields in JSON files, for errors that say exactly where a file is wrong:
/// `model.vocab["tok"]`, `pre_tokenizer.pretokenizers[1].type`, `moe.num_experts`.
public enum JSONField {
    /// A key of a JSON object whose keys are data (vocabulary entries, tensor names, special-token
    /// names); paths print it as `["key"]` rather than `.key`.
    public struct DataKey: CodingKey, Sendable {
        public var stringValue: String
        public var intValue: Int? { nil }
        public init(stringValue: String) { self.stringValue = stringValue }
        public init?(intValue: Int) { nil }
    }

    /// The position of an element of a JSON list.
    public struct IndexKey: CodingKey, Sendable {
        public var intValue: Int?
        public var stringValue: String { "\(intValue ?? 0)" }
        public init(_ i: Int) { intValue = i }
        public init?(stringValue: String) { nil }
        public init?(intValue: Int) { self.intValue = intValue }
    }

    /// A coding path as a reader of the file would write it; `(top level)` for the empty path.
    public static func path(_ path: [any CodingKey]) -> String {
        guard !path.isEmpty else { return "(top level)" }
        var s = ""
        for k in path {
            if k is DataKey {
                s += "[\"\(k.stringValue)\"]"
            } else if let i = k.intValue {
                s += "[\(i)]"
            } else {
                s += s.isEmpty ? k.stringValue : ".\(k.stringValue)"
            }
        }
        return s
    }
}

extension DecodingError {
    /// The coding path of the field the error is about (a missing key included).
    var codingPath: [any CodingKey] {
        switch self {
        case .keyNotFound(let key, let c): return c.codingPath + [key]
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c): return c.codingPath
        @unknown default: return []
        }
    }

    /// The field a decoding error is about, as `JSONField.path` prints it.
    var fieldPath: String { JSONField.path(codingPath) }

    /// What the field should have held, in words.
    var expectation: String {
        func kind(_ t: Any.Type) -> String {
            let name = String(describing: t)
            if name.hasPrefix("Dictionary") || name.hasPrefix("[String") { return "an object" }
            if name.hasPrefix("Array") || name.hasPrefix("[") { return "a list" }
            if t == String.self { return "a string" }
            if t == Bool.self { return "true or false" }
            if t == Double.self || t == Float.self { return "a number" }
            if t == Int.self || t == Int32.self || t == Int64.self { return "an integer" }
            return "a value of type \(name)"
        }
        switch self {
        case .keyNotFound: return "a value (the key is missing)"
        case .typeMismatch(let t, _): return kind(t)
        case .valueNotFound(let t, _): return "\(kind(t)), found null"
        case .dataCorrupted(let c): return c.codingPath.isEmpty ? "valid JSON (\(c.debugDescription))" : c.debugDescription
        @unknown default: return "a valid value"
        }
    }
}
