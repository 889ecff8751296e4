import Foundation

/// What a run will hold in memory, worked out before anything large is allocated (`--dry-run`;
/// every training command checks it against the machine's available memory first). Training's
/// plan is ``training(config:freeze:microTokens:seq:ranks:zero1:dtype:process:)`` (Training/),
/// decoding's ``decoding(config:batch:promptTokens:newTokens:dtype:prefillBatch:process:)``.
///
/// The activation bytes are not a formula kept beside the code: the plan builds the model on a
/// lazily mapped parameter store (no page is touched), reserves the activations of one
/// micro-batch exactly as training will, and counts the buffers that this allocated. Weights,
/// gradients (trainable views only: the others are never written, so never resident) and Adam
/// moments (trainable only, or a 1/N share under ZeRO-1) follow from the parameter counts.
public struct MemoryPlan: Sendable, CustomStringConvertible {
    public struct Item: Sendable {
        public var name: String
        public var bytes: Int
        public var note: String
        public init(name: String, bytes: Int, note: String) { (self.name, self.bytes, self.note) = (name, bytes, note) }
    }

    public var items: [Item]

    public init(items: [Item], parameters: Int, trainable: Int) {
        (self.items, self.parameters, self.trainable) = (items, parameters, trainable)
    }
    public var total: Int { items.reduce(0) { $0 + $1.bytes } }
    public var parameters: Int
    public var trainable: Int

    /// The plan of greedy decoding `batch` prompts of up to `promptTokens` tokens with up to
    /// `newTokens` new tokens each (the longest batch of a translation job): weights, the KV cache
    /// of every layer, and the activations of the prefill. The layers reserve their training
    /// buffers, so the activation line is an upper bound: decoding writes only the forward part.
    public static func decoding(
        config c: ModelConfig, batch: Int, promptTokens: Int, newTokens: Int, dtype: DType = .f32, prefillBatch: Int? = nil,
        process: Int = residentBytes()
    ) -> MemoryPlan {
        let pre = prefillBatch ?? batch  // prompts in one prefill (beam search: batch / beams)
        let m = DecoderModel(config: c, store: ParameterStore(layout: DecoderModel.fullLayout(c)))
        m.store.holdFrozenMatrices(as: dtype, trainable: { _ in false }, keepValues: false)
        let act = FloatBuffer.countingAllocations {
            m.reserve(batch: pre, seq: max(1, promptTokens))
            m.reserve(batch: batch, seq: 1)  // a decoding step of every sequence
        }
        let maxLen = promptTokens + newTokens + 1
        let kv = kvCacheBytes(c, rows: batch, positions: maxLen)
        let n = m.store.count
        return MemoryPlan(
            items: [
                Item(name: "process", bytes: process, note: "binary, tokenizer, input read so far (resident now)"),
                Item(name: "weights", bytes: m.store.heldBytes, note: weightsNote(m.store)),
                Item(name: "kv cache", bytes: kv, note: "\(c.numHiddenLayers) layers x \(batch) sequences x \(maxLen) positions"),
                Item(
                    name: "activations", bytes: act,
                    note: "prefill of \(pre) x \(promptTokens) tokens (at most: the backward part stays untouched)"),
            ], parameters: n, trainable: 0)
    }

    /// Bytes of a KV cache of `rows` rows of `positions` positions (keys and values, fp32, every layer).
    public static func kvCacheBytes(_ c: ModelConfig, rows: Int, positions: Int) -> Int {
        c.numHiddenLayers * 2 * rows * positions * c.numKeyValueHeads * c.headDim * 4
    }

    /// "N parameters, fp32" or "N parameters, H of them bf16".
    public static func weightsNote(_ s: ParameterStore) -> String {
        let half = s.entries.filter { $0.dtype == .bf16 }.reduce(0) { $0 + $1.count }
        return "\(s.count.formatted()) parameters, " + (half == 0 ? "fp32" : "\(half.formatted()) of them held in bf16")
    }

    public var description: String {
        func gb(_ b: Int) -> String { String(format: "%8.2f GB", Double(b) / 1e9) }
        var s = ""
        for i in items { s += "  \(i.name.padding(toLength: 12, withPad: " ", startingAt: 0))\(gb(i.bytes))  \(i.note)\n" }
        s += "  \("total".padding(toLength: 12, withPad: " ", startingAt: 0))\(gb(total))\n"
        return s
    }

    /// The plan under a heading that says what the machine has available now (`--dry-run`).
    public func report(_ title: String) -> String {
        let avail = Self.availableBytes().map { String(format: "%.2f GB", Double($0) / 1e9) } ?? "unknown"
        return "\(title) (available now: \(avail)):\n\(description)"
    }

    /// Throws ``MemoryPlanError`` when the plan needs more than `available` bytes.
    public func check(available: Int? = availableBytes(), hint: String) throws {
        guard let available, total > available else { return }
        throw MemoryPlanError.exceeds(plan: self, available: available, hint: hint)
    }

    /// This process's resident set now (VmRSS), in bytes; 0 when unknown.
    public static func residentBytes() -> Int { procField("/proc/self/status", "VmRSS:") ?? 0 }

    /// Memory the kernel can give without swapping (MemAvailable), in bytes; nil when unknown.
    public static func availableBytes() -> Int? { procField("/proc/meminfo", "MemAvailable:") }

    private static func procField(_ file: String, _ key: String) -> Int? {
        guard let s = try? String(contentsOfFile: file, encoding: .utf8) else { return nil }
        for line in s.split(separator: "\n") where line.hasPrefix(key) {
            return line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first.flatMap { Int($0) }.map { $0 * 1024 }
        }
        return nil
    }
}

/// A run that would not fit in memory.
public enum MemoryPlanError: LocalizedError {
    case exceeds(plan: MemoryPlan, available: Int, hint: String)
    public var errorDescription: String? {
        switch self {
        case .exceeds(let plan, let available, let hint):
            return String(
                format: "this run needs %.2f GB but the machine has %.2f GB available; nothing was allocated.\n%@Hint: %@",
                Double(plan.total) / 1e9, Double(available) / 1e9, plan.description, hint)
        }
    }
}
