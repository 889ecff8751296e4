import Foundation

/// FNV-1a 64-bit streaming hash. Used for cache keys, where a collision would need identical
/// lengths and adversarial inputs; not a security boundary.
public struct FNV64: Sendable {
    public private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325
    public init() {}

    public mutating func add(bytes: UnsafeRawBufferPointer) {
        var h = value
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        value = h
    }
    public mutating func add<T: BitwiseCopyable>(_ xs: [T]) {
        add(xs.count)
        xs.withUnsafeBytes { add(bytes: $0) }
    }
    public mutating func add(_ n: Int) { withUnsafeBytes(of: n.littleEndian) { add(bytes: $0) } }
    public mutating func add(_ s: String) { add(Array(s.utf8)) }
    public var hex: String { String(format: "%016llx", value) }
}

/// Results of finished runs on disk, keyed by everything that determines them: the base model's
/// weights, the training and test data, the method, its MoE options, the budget and the seed.
/// Experiments share variants (Mix-MoE with default options appears in six of them), so a run is
/// trained once and its result reused; reports say which runs came from the cache.
public struct RunCache: Sendable {
    public let directory: URL
    public init(directory: URL) { self.directory = directory }

    /// Hash of the inputs shared by every run of an experiment.
    public static func fingerprint(base: DecoderModel, monoStream: [Int32], examples: [MTExample], test: [Bitext],
                                   testSegments: Int) -> String {
        var h = FNV64()
        h.add(bytes: UnsafeRawBufferPointer(start: base.store.params.ptr, count: base.store.count * 4))
        h.add(base.store.entries.map(\.name).joined(separator: ","))
        h.add(monoStream)
        h.add(examples.count)
        for e in examples { h.add(e.prompt); h.add(e.target) }
        for b in test {
            h.add(b.langA + "-" + b.langB)
            for p in b.pairs.prefix(testSegments) { h.add(p.a); h.add(p.b) }
        }
        h.add(testSegments)
        return h.hex
    }

    /// Key of one run: the shared fingerprint plus the run's own settings.
    public static func key(fingerprint: String, method: Method, moe: MoEOptions, budget: Budget) -> String {
        let parts = [
            "v1", fingerprint, method.rawValue,
            "experts=\(moe.experts)", "every=\(moe.every)", "placement=\(moe.placement)", "features=\(moe.routerFeatures)",
            "topk=\(moe.topK)", "lb=\(moe.lbCoef)", "combine=\(moe.combine)",
            "s1=\(budget.stage1Steps)", "s2=\(budget.stage2Steps)", "bt=\(budget.batchTokens)", "mt=\(budget.microTokens)",
            "seq=\(budget.seq)", "lr1=\(budget.lr1)", "lr2=\(budget.lr2)", "warmup=\(budget.warmup)", "seed=\(budget.seed)",
        ]
        var h = FNV64()
        h.add(parts.joined(separator: "|"))
        return h.hex
    }

    func url(_ key: String) -> URL { directory.appendingPathComponent("\(key).json") }

    /// The stored result for `key`, or nil (absent or unreadable: the run is simply redone).
    public func load(_ key: String, variant: String) -> RunResult? {
        guard let d = try? Data(contentsOf: url(key)),
              let o = try? JSONSerialization.jsonObject(with: d) as? [String: Any],
              let seed = o["seed"] as? Int, let secs = o["train_s"] as? Double,
              let dirs = o["directions"] as? [[String: Any]] else { return nil }
        var r = RunResult(variant: variant, seed: UInt64(seed), directions: [], trainSeconds: secs)
        for x in dirs {
            guard let dir = x["direction"] as? String, let n = x["segments"] as? Int, let b = x["bleu"] as? Double,
                  let c = x["chrf"] as? Double, let cp = x["chrf++"] as? Double, let s = x["seconds"] as? Double,
                  let sig = x["bleu_signature"] as? String else { return nil }
            r.directions.append(DirectionResult(direction: dir, segments: n, bleu: b, chrf: c, chrfpp: cp, seconds: s, bleuSignature: sig))
        }
        r.perplexity = (o["perplexity"] as? [String: Double]) ?? [:]
        r.expertStats = (o["expert_stats"] as? [String: Any]) ?? [:]
        r.cached = true
        return r
    }

    /// Stores a result atomically.
    public func store(_ r: RunResult, key: String) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let o: [String: Any] = [
            "variant": r.variant, "seed": Int(r.seed), "train_s": r.trainSeconds, "perplexity": r.perplexity,
            "expert_stats": r.expertStats,
            "directions": r.directions.map(\.jsonObject),
        ]
        try AtomicFile.write(JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), to: url(key))
    }
}
