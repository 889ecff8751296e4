import Foundation

extension DecoderModel {
    /// Loads a Hugging Face model directory (`config.json`, `model.safetensors` or a sharded
    /// `model.safetensors.index.json`). Strict: every tensor the config implies must be present
    /// with its shape, and no other tensor may be. With `dtype: .bf16` the views `trainable` leaves
    /// frozen (inference: all) have their weight matrices held in bf16, read straight into bf16
    /// storage (the fp32 copy is never made).
    public static func load(
        directory: URL, dtype: DType = .f32, trainable: @escaping (String) -> Bool = { _ in false }
    ) throws
        -> DecoderModel
    {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDir), isDir.boolValue else {
            throw ModelError.missingDirectory(directory.path)
        }
        let config = try ModelConfig.load(ModelDirectory(directory).config)
        let layout = fullLayout(config)
        let files = try WeightFiles(directory: directory)
        try files.check(against: layout)
        let store = ParameterStore(layout: layout)
        if dtype == .bf16 { store.holdFrozenMatrices(as: .bf16, trainable: trainable, keepValues: false) }
        files.fill(store)
        return DecoderModel(config: config, store: store)
    }

    /// Shard size above which `save` splits the weights: 5 GB, transformers' `save_pretrained`
    /// default (`max_shard_size="5GB"`).
    public static let defaultShardBytes = 5_000_000_000

    /// Writes `config.json` and the weights, each file atomically:
    /// `model.safetensors`, or above `maxShardBytes` transformers' sharded layout
    /// (`model-00001-of-0000N.safetensors` and `model.safetensors.index.json`). Files of the other
    /// layout left by an earlier save are removed, so the directory always loads as written.
    public func save(directory: URL, maxShardBytes: Int = defaultShardBytes) throws {
        let fm = FileManager.default
        try fm.createDirectory(at: directory, withIntermediateDirectories: true)
        let tensors = store.entries.enumerated().map { i, e in (name: e.name, shape: e.shape, values: store.operand(i)) }
        let single = ModelDirectory(directory).weights
        let index = ModelDirectory(directory).weightsIndex
        var written: Set<String> = []
        if store.heldBytes <= maxShardBytes {
            try SafetensorsFile.write(single, stored: tensors, metadata: ["format": "pt"])
            written.insert(single.lastPathComponent)
        } else {
            // fill shards in order, a tensor larger than a shard alone in its own
            var shards: [[(name: String, shape: [Int], values: WeightOperand)]] = [[]]
            var bytes = 0
            for t in tensors {
                let b = t.values.dtype.bytes * t.shape.reduce(1, *)
                if bytes + b > maxShardBytes && !shards[shards.count - 1].isEmpty { shards.append([]); bytes = 0 }
                shards[shards.count - 1].append(t)
                bytes += b
            }
            var map: [String: String] = [:]
            for (i, shard) in shards.enumerated() {
                let name = String(format: "model-%05d-of-%05d.safetensors", i + 1, shards.count)
                try SafetensorsFile.write(directory.appendingPathComponent(name), stored: shard, metadata: ["format": "pt"])
                for t in shard { map[t.name] = name }
                written.insert(name)
            }
            try AtomicFile.writeJSON(SafetensorsIndex(metadata: .init(totalSize: store.heldBytes), weightMap: map), to: index)
            written.insert(index.lastPathComponent)
        }
        for f in (try? fm.contentsOfDirectory(atPath: directory.path)) ?? []
        where !written.contains(f) && (f == single.lastPathComponent || f == index.lastPathComponent || Self.isShardName(f)) {
            try fm.removeItem(at: directory.appendingPathComponent(f))
        }
        try AtomicFile.writeJSON(config, to: ModelDirectory(directory).config)
        // LoRA: the adapters alone as a PEFT adapter directory, for PEFT on the unchanged base
        if config.lora != nil { try PEFTAdapter.write(self, to: directory.appendingPathComponent(PEFTAdapter.folder)) }
        // the PyTorch code of an architecture transformers lacks (auto_map points at it)
        for (name, text) in RemoteCode.files {
            let f = directory.appendingPathComponent(name)
            if config.needsRemoteCode {
                try AtomicFile.write(text + "\n", to: f)
            } else if fm.fileExists(atPath: f.path) {
                try fm.removeItem(at: f)
            }
        }
    }
}

extension DecoderModel {
    /// `model-NNNNN-of-NNNNN.safetensors`
    static func isShardName(_ f: String) -> Bool {
        f.hasPrefix("model-") && f.hasSuffix(".safetensors") && f.contains("-of-")
    }

    /// A fingerprint of a model directory's weights (FNV-1a of `model.safetensors`, or of every
    /// shard in order), for run records.
    public static func weightsHash(directory dir: URL) throws -> String {
        try WeightFiles(directory: dir).files.map { try FNV64.file(URL(fileURLWithPath: $0.path)) }.joined(separator: "+")
    }
}

extension DecoderModel {
    /// Loads a model directory and a tokenizer (default: the directory's tokenizer.json) and checks
    /// that they fit each other.
    public static func loadWithTokenizer(directory: URL, tokenizer: String? = nil, dtype: DType = .f32) throws -> (DecoderModel, BPETokenizer) {
        let m = try load(directory: directory, dtype: dtype)
        return (m, try m.loadTokenizer(directory: directory, tokenizer: tokenizer))
    }

    /// Loads `tokenizer` (default: `directory`'s tokenizer.json) and checks that it fits this model.
    public func loadTokenizer(directory: URL, tokenizer: String? = nil) throws -> BPETokenizer {
        let path = tokenizer ?? ModelDirectory(directory).tokenizer.path
        let tok = try BPETokenizer.load(URL(fileURLWithPath: path))
        try checkTokenizer(tok, file: path)
        return tok
    }

    /// An independent copy (same configuration, weights copied; trainable flags reset).
    public func copy() -> DecoderModel {
        let s = ParameterStore(layout: store.entries.map { ($0.name, $0.shape) })
        s.setTrainable { store.entries[store.id($0)!].dtype == .f32 }
        for (i, e) in store.entries.enumerated() {
            s.hold(i, as: e.dtype, keepValues: false)
            store.copy(e.name, into: s, view: i)
        }
        return DecoderModel(config: config, store: s)
    }
}
