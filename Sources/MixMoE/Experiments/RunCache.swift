import Foundation

/// Results of finished runs on disk, keyed by everything that determines them: the base model's
/// weights, the training and test data, the method, its MoE options, the budget and the seed.
/// Experiments share variants (Mix-MoE with default options appears in six of them), so a run is
/// trained once and its result reused; reports say which runs came from the cache.
public struct RunCache: Sendable {
    public let directory: URL
    public init(directory: URL) { self.directory = directory }

    /// Version of the numerics behind a run's result. Results are committed (`reports/runs/`) so
    /// tables can be rebuilt and extended in later sessions without retraining; keying on the
    /// executable's hash would discard them at every rebuild, even one that only touched the
    /// server. So the key carries this declared version instead: **bump it in any change that
    /// alters a number a run produces** (a kernel, the data order, a method's recipe, decoding,
    /// scoring). The parity tests against PyTorch, HF tokenizers and sacreBLEU pin those numbers,
    /// so an accidental change fails CI rather than leaving stale results behind.
    public static let numericsVersion = "n1"

    /// Hash of the inputs shared by every run of an experiment: base weights, training data, the
    /// test segments used, and the held-out texts behind the perplexities.
    public static func fingerprint(
        base: DecoderModel, monoStream: [Int32], examples: [MTExample], test: [Bitext],
        testSegments: Int, dev: [String: URL]
    ) throws -> String {
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
        for (lang, url) in dev.sorted(by: { $0.key < $1.key }) {
            h.add(lang)
            let d = try Data(contentsOf: url)
            d.withUnsafeBytes { h.add(bytes: $0) }
        }
        return h.hex
    }

    /// Key of one run: the code version, the shared fingerprint and the run's own settings.
    /// `threads` is part of it: results are deterministic for a seed and a thread count, and
    /// differ in float rounding across thread counts.
    public static func key(
        fingerprint: String, method: Method, moe: MoEOptions, budget: Budget, threads: Int,
        codeVersion: String = RunCache.numericsVersion
    ) throws -> String {
        var h = FNV64()
        h.add(["v3", codeVersion, fingerprint, method.rawValue, moe.key, try sortedJSON(budget), "threads=\(threads)"].joined(separator: "|"))
        return h.hex
    }

    func url(_ key: String) -> URL { directory.appendingPathComponent("\(key).json") }

    /// The stored result for `key`, or nil (absent or unreadable: the run is simply redone).
    public func load(_ key: String, variant: String) -> RunResult? {
        guard let d = try? Data(contentsOf: url(key)), var r = try? JSONDecoder().decode(RunResult.self, from: d) else { return nil }
        r.variant = variant
        r.cached = true
        return r
    }

    /// Adds `setup` to the stored result of `key` written before setups were recorded (the key it
    /// was found under says how it was made); the file keeps everything else, its variant name too.
    public func recordSetup(_ setup: RunSetup, key: String) throws {
        guard let d = try? Data(contentsOf: url(key)), var stored = try? JSONDecoder().decode(RunResult.self, from: d),
            stored.setup == nil
        else { return }
        stored.setup = setup
        try store(stored, key: key)
    }

    /// Stores a result atomically.
    public func store(_ r: RunResult, key: String) throws {
        var r = r
        r.cached = false
        let enc = JSONEncoder(); enc.outputFormatting = [.sortedKeys]
        try AtomicFile.write(enc.encode(r), to: url(key))
    }
}
