import Foundation

extension DecoderModel {
    /// Loads a Hugging Face model directory (`config.json`, `model.safetensors` or a sharded
    /// `model.safetensors.index.json`). Strict: every tensor the config implies must be present
    /// with its shape, and no other tensor may be.
    public static func load(directory: URL) throws -> DecoderModel {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDir), isDir.boolValue else {
            throw ModelError.missingDirectory(directory.path)
        }
        let config = try ModelConfig.load(directory.appendingPathComponent("config.json"))
        let files = try openWeights(directory)
        let store = ParameterStore(layout: fullLayout(config))
        try fill(store, from: files)
        return DecoderModel(config: config, store: store)
    }

    /// Opens `model.safetensors`, or every shard named by `model.safetensors.index.json`.
    static func openWeights(_ dir: URL) throws -> [SafetensorsFile] {
        let single = dir.appendingPathComponent("model.safetensors")
        if FileManager.default.fileExists(atPath: single.path) { return [try SafetensorsFile(url: single)] }
        let index = dir.appendingPathComponent("model.safetensors.index.json")
        guard let data = try? Data(contentsOf: index) else {
            throw ModelError.missingFile(single.path, hint: "no model.safetensors nor model.safetensors.index.json in \(dir.path).")
        }
        guard let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let map = obj["weight_map"] as? [String: String]
        else {
            throw ModelError.config(file: index.path, field: "weight_map", expected: "an object of tensor name -> shard file")
        }
        return try Set(map.values).sorted().map { try SafetensorsFile(url: dir.appendingPathComponent($0)) }
    }

    /// Copies every tensor of `files` into `store`, strictly matching names and shapes.
    static func fill(_ store: ParameterStore, from files: [SafetensorsFile]) throws {
        var seen = Set<String>()
        for f in files {
            for (name, info) in f.tensors.sorted(by: { $0.key < $1.key }) {
                guard let id = store.id(name) else { throw ModelError.unknownTensor(file: f.path, name: name) }
                let want = store.entries[id].shape
                guard info.shape == want else {
                    throw ModelError.tensorShape(file: f.path, name: name, expected: want, got: info.shape)
                }
                f.read(name, into: store.w(id))
                seen.insert(name)
            }
        }
        if let missing = store.entries.first(where: { !seen.contains($0.name) }) {
            throw ModelError.missingTensor(file: files.first?.path ?? "model.safetensors", name: missing.name)
        }
    }

    /// Writes `config.json` (plus any extra JSON blocks) and `model.safetensors`, each atomically.
    public func save(directory: URL, extraConfig: [String: Any] = [:]) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let tensors = store.entries.map { e in (name: e.name, shape: e.shape, values: UnsafePointer(store.w(store.id(e.name)!))) }
        try SafetensorsFile.write(
            directory.appendingPathComponent("model.safetensors"), tensors: tensors,
            metadata: ["format": "pt"])
        let enc = JSONEncoder()
        var dict = try JSONSerialization.jsonObject(with: enc.encode(config)) as! [String: Any]
        for (k, v) in extraConfig { dict[k] = v }
        let json = try JSONSerialization.data(withJSONObject: dict, options: [.prettyPrinted, .sortedKeys])
        try AtomicFile.write(json, to: directory.appendingPathComponent("config.json"))
    }
}

extension DecoderModel {
    /// Loads a model directory and a tokenizer (default: the directory's tokenizer.json) and checks
    /// that they fit each other.
    public static func loadWithTokenizer(directory: URL, tokenizer: String? = nil) throws -> (DecoderModel, BPETokenizer) {
        let m = try load(directory: directory)
        let path = tokenizer ?? directory.appendingPathComponent("tokenizer.json").path
        let tok = try BPETokenizer.load(URL(fileURLWithPath: path))
        try m.checkTokenizer(tok, file: path)
        return (m, tok)
    }

    /// An independent copy (same configuration, weights copied; trainable flags reset).
    public func copy() -> DecoderModel {
        let s = ParameterStore(layout: store.entries.map { ($0.name, $0.shape) })
        s.params.ptr.update(from: store.params.ptr, count: store.count)
        return DecoderModel(config: config, store: s)
    }
}
