import Foundation

/// Named tensors that can be copied out one at a time: a loaded model's store, or safetensors
/// files read tensor by tensor. Upcycling and the stage-2 copy read through it, so that building a
/// model from files on disk never holds a second full model in memory.
public protocol TensorSource {
    /// Shape of tensor `name`, nil when absent.
    func shape(_ name: String) -> [Int]?
    /// Copies tensor `name` (present) as Float into `dst`.
    func read(_ name: String, into dst: UnsafeMutablePointer<Float>)
    /// Copies tensor `name` (present) as bf16 into `dst` (rounded to nearest even if it is wider).
    func readHalf(_ name: String, into dst: UnsafeMutablePointer<UInt16>)
}

extension TensorSource {
    /// Copies tensor `name` into view `id` of `store`, in the view's storage type.
    func copy(_ name: String, into store: ParameterStore, view id: Int) {
        switch store.entries[id].dtype {
        case .f32: read(name, into: store.w(id))
        case .bf16: readHalf(name, into: store.half(id))
        }
    }
}

extension ParameterStore: TensorSource {
    public func shape(_ name: String) -> [Int]? { id(name).map { entries[$0].shape } }
    public func read(_ name: String, into dst: UnsafeMutablePointer<Float>) {
        let i = id(name)!
        switch entries[i].dtype {
        case .f32: dst.update(from: w(i), count: entries[i].count)
        case .bf16: BF16.widen(half(i), dst, count: entries[i].count)
        }
    }
    public func readHalf(_ name: String, into dst: UnsafeMutablePointer<UInt16>) {
        let i = id(name)!
        switch entries[i].dtype {
        case .f32: BF16.narrow(w(i), dst, count: entries[i].count)
        case .bf16: dst.update(from: half(i), count: entries[i].count)
        }
    }
}

/// The weights of a model directory: `model.safetensors` or the shards of
/// `model.safetensors.index.json`, memory-mapped.
public struct WeightFiles: TensorSource {
    public let files: [SafetensorsFile]
    private let owner: [String: Int]  // tensor name -> index in files

    public init(files: [SafetensorsFile]) {
        self.files = files
        var o: [String: Int] = [:]
        for (i, f) in files.enumerated() { for name in f.tensors.keys { o[name] = i } }
        owner = o
    }

    /// Opens the weights of model directory `dir`.
    public init(directory dir: URL) throws {
        let single = ModelDirectory(dir).weights
        if FileManager.default.fileExists(atPath: single.path) {
            self.init(files: [try SafetensorsFile(url: single)])
            return
        }
        let index = ModelDirectory(dir).weightsIndex
        guard let data = try? Data(contentsOf: index) else {
            throw ModelError.missingFile(single.path, hint: "no model.safetensors nor model.safetensors.index.json in \(dir.path).")
        }
        guard let map = (try? JSONDecoder().decode(SafetensorsIndex.self, from: data))?.weightMap else {
            throw ModelError.config(file: index.path, field: "weight_map", expected: "an object of tensor name -> shard file")
        }
        self.init(files: try Set(map.values).sorted().map { try SafetensorsFile(url: dir.appendingPathComponent($0)) })
    }

    public func shape(_ name: String) -> [Int]? { owner[name].map { files[$0].tensors[name]!.shape } }
    public func read(_ name: String, into dst: UnsafeMutablePointer<Float>) { files[owner[name]!].read(name, into: dst) }
    public func readHalf(_ name: String, into dst: UnsafeMutablePointer<UInt16>) { files[owner[name]!].readHalf(name, into: dst) }

    /// Strict match with `layout`: every tensor present with its shape, and no other tensor.
    public func check(against layout: [(String, [Int])]) throws {
        let want = Dictionary(layout, uniquingKeysWith: { a, _ in a })
        for f in files {
            for (name, info) in f.tensors.sorted(by: { $0.key < $1.key }) {
                guard let shape = want[name] else { throw ModelError.unknownTensor(file: f.path, name: name) }
                guard info.shape == shape else { throw ModelError.tensorShape(file: f.path, name: name, expected: shape, got: info.shape) }
            }
        }
        if let missing = layout.first(where: { owner[$0.0] == nil }) {
            throw ModelError.missingTensor(file: files.first?.path ?? ModelDirectory.weightsName, name: missing.0)
        }
    }

    /// Fills every view of `store` from the tensor of the same name (after `check`), in each
    /// view's storage type.
    func fill(_ store: ParameterStore) {
        for (i, e) in store.entries.enumerated() { copy(e.name, into: store, view: i) }
    }
}
