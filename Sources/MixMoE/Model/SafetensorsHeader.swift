import Foundation

/// The JSON header of a safetensors file: tensor name -> `{dtype, shape, data_offsets}`, and an
/// optional `__metadata__` map of strings. Names are data, so the header is read through a
/// container keyed by them; any other shape of header is refused with the tensor it is about.
struct SafetensorsHeader: Codable {
    struct Entry: Codable {
        var dtype: String
        var shape: [Int]
        var dataOffsets: [Int]
        enum CodingKeys: String, CodingKey {
            case dtype, shape
            case dataOffsets = "data_offsets"
        }
    }

    /// In the order they were written (the reader sorts by offset itself).
    var tensors: [(name: String, entry: Entry)]
    var metadata: [String: String]

    static let metadataKey = "__metadata__"

    init(tensors: [(name: String, entry: Entry)], metadata: [String: String]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    /// What is wrong with a header, in the words the reader's error uses.
    struct Problem: Error { var detail: String }

    init(from decoder: any Swift.Decoder) throws {
        guard let c = try? decoder.container(keyedBy: JSONField.DataKey.self) else { throw Problem(detail: "header is not a JSON object") }
        var tensors: [(name: String, entry: Entry)] = []
        var metadata: [String: String] = [:]
        for key in c.allKeys {
            let name = key.stringValue
            if name == Self.metadataKey {
                guard let m = try? c.decode([String: String].self, forKey: key) else {
                    throw Problem(detail: "\(Self.metadataKey) is not an object of strings")
                }
                metadata = m
                continue
            }
            guard let t = try? c.nestedContainer(keyedBy: Entry.CodingKeys.self, forKey: key) else {
                throw Problem(detail: "entry '\(name)' is not an object")
            }
            guard let dtype = try? t.decode(String.self, forKey: .dtype) else { throw Problem(detail: "tensor '\(name)': missing string 'dtype'") }
            guard let shape = try? t.decode([Int].self, forKey: .shape) else {
                throw Problem(detail: "tensor '\(name)': 'shape' must be a list of non-negative integers")
            }
            guard let offsets = try? t.decode([Int].self, forKey: .dataOffsets) else {
                throw Problem(detail: "tensor '\(name)': 'data_offsets' must be [begin, end] with 0 <= begin <= end")
            }
            tensors.append((name, Entry(dtype: dtype, shape: shape, dataOffsets: offsets)))
        }
        self.tensors = tensors
        self.metadata = metadata
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: JSONField.DataKey.self)
        for t in tensors { try c.encode(t.entry, forKey: JSONField.DataKey(stringValue: t.name)) }
        if !metadata.isEmpty { try c.encode(metadata, forKey: JSONField.DataKey(stringValue: Self.metadataKey)) }
    }
}

/// `model.safetensors.index.json`: which shard file holds each tensor (transformers' sharded
/// layout), and the total size of the weights.
struct SafetensorsIndex: Codable {
    struct Metadata: Codable {
        var totalSize: Int?
        enum CodingKeys: String, CodingKey { case totalSize = "total_size" }
    }
    var metadata: Metadata?
    var weightMap: [String: String]
    enum CodingKeys: String, CodingKey {
        case metadata
        case weightMap = "weight_map"
    }
}
