import ArgumentParser
import Foundation
import MixMoE
import MixMoECommandLine

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks (release build). One JSON object per measurement on stdout.",
        subcommands: [BenchTrain.self, BenchPrefill.self, BenchDecode.self, BenchGemm.self, BenchMemory.self])
}

/// The benchmarks' common options: the model shape, repetitions and threads.
struct BenchOptions: ParsableArguments {
    @Option(help: ArgumentHelp(namedConfigHelp)) var config: String = "small"
    @Option(help: "Timed repetitions (after warm-up); the median is reported.") var reps: Int = 5
    @Option(help: "Untimed warm-up repetitions.") var warmup: Int = 1
    @OptionGroup var compute: ComputeOptions

    /// Applies the thread count and runs `body` with the resolved config, reporting errors.
    func measuring(distributed: Bool = false, _ body: (ModelConfig) throws -> Void) async throws {
        try await compute.run(distributed: distributed) { try body(try ModelConfig.resolve(config)) }
    }

    /// Times `body` (warm-up, then `reps` timed runs) and prints one JSON line: the case, the
    /// common fields (config, threads, reps, median/min/max seconds, peak RSS) and the case's
    /// `fields`, which may use the median.
    func report<Fields: Encodable>(_ name: String, _ body: () throws -> Void, fields: (Double) -> Fields) throws {
        emitJSON(row(name, times: try Benchmark.timed(reps: reps, warmup: warmup, body), fields: fields))
    }

    /// The row of `times`; `fields` gets their median.
    func row<Fields: Encodable>(_ name: String, times: [Double], fields: (Double) -> Fields) -> BenchmarkRow<Fields> {
        BenchmarkRow(name: name, config: config, threads: compute.threads, times: times, fields: fields)
    }
}

struct BenchTrain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "Time full training steps (forward, backward, clip, AdamW) on random tokens.")

    @OptionGroup var bench: BenchOptions
    @Option(
        help:
            "Training method: full (dense, every parameter), lora (rank 8 on every linear layer, base frozen), stage1 or stage2 (Mix-MoE with the MoE options below)."
    )
    var method: FreezePlan = .full
    @OptionGroup var moe: MoEOptionGroup
    @Flag(help: "Use the explicit [h ; T h] router instead of the folded one (stage1/stage2).") var explicitRouter = false
    @Flag(help: "Also report the share of step time in router, attention core and optimiser.") var profile = false
    @Option(help: "Sequences per step (under mpirun: the global batch, split over the ranks).") var batch: Int = 8
    @Flag(help: "Under mpirun: ZeRO-1 (Adam moments sharded over the ranks).") var zero1 = false
    @Option(help: "Tokens per sequence.") var seq: Int = 256
    @Option(help: "What frozen weight matrices are held in: f32 or bf16 (compute stays fp32).") var dtype: DType = .f32

    func validate() throws {
        guard TrainingBenchmark.methods.contains(method) else { throw ValidationError("--method: full, lora, stage1 or stage2") }
    }

    func run() async throws {
        try await bench.measuring(distributed: true) { cfg in
            var b = TrainingBenchmark(method: method)
            b.moe = moe.options
            (b.explicitRouter, b.batch, b.seq, b.dtype, b.zero1) = (explicitRouter, batch, seq, dtype, zero1)
            (b.warmup, b.reps, b.profile) = (bench.warmup, bench.reps, profile)
            let r = try b.run(cfg)
            guard Distributed.world.isRoot else { return }
            emitJSON(bench.row("train", times: r.stepSeconds) { med in TrainFields(b, r, cfg: cfg, median: med) })
        }
    }
}

/// The fields of a `bench train` row: the measurement, then with --profile the share of step
/// time per profiled region as `share_<region>` keys beside them.
struct TrainFields: Encodable {
    var core: Core
    var shares: [String: Double]

    struct Core: Encodable {
        var method, dtype: String
        var batch, seq: Int
        var tokensPerSecond, flopsPerToken, gflops: Double
        var trainableParams: Int
        /// params + grads + Adam moments + activations/scratch, from the buffers' shapes
        var buffersPeakMiB: Double
        var ranks: Int
        var zero1: Bool
        /// collectives of the timed steps: share of the step time, and bytes per step per rank
        var collectiveShare, collectiveMiBPerStep: Double
        /// Mix-MoE runs: the router form and the experts per group
        var router: String?
        var experts: Int?

        enum CodingKeys: String, CodingKey {
            case method, dtype, batch, seq, gflops, ranks, zero1, router, experts
            case tokensPerSecond = "tokens_per_s"
            case flopsPerToken = "flops_per_token"
            case trainableParams = "trainable_params"
            case buffersPeakMiB = "buffers_peak_mb"
            case collectiveShare = "collective_share"
            case collectiveMiBPerStep = "collective_mb_per_step"
        }
    }

    init(_ b: TrainingBenchmark, _ r: TrainingBenchmark.Result, cfg: ModelConfig, median: Double) {
        // FLOPs of the dense model (a top-1 MoE layer of n slices costs what the dense FFN costs)
        let n = Double(b.batch * b.seq), fpt = cfg.trainFlopsPerToken(seq: b.seq)
        let moeRun = b.method == .stage1 || b.method == .stage2
        core = Core(
            method: b.method.rawValue, dtype: b.dtype.rawValue, batch: b.batch, seq: b.seq, tokensPerSecond: n / median, flopsPerToken: fpt,
            gflops: fpt * n / median / 1e9, trainableParams: r.trainableParams, buffersPeakMiB: Double(r.buffersPeakBytes) / 1_048_576,
            ranks: Distributed.world.size, zero1: b.zero1, collectiveShare: r.collectiveShare,
            collectiveMiBPerStep: r.collectiveBytesPerStep / 1_048_576, router: moeRun ? (b.explicitRouter ? "explicit" : "folded") : nil,
            experts: moeRun ? b.moe.experts : nil)
        let total = r.stepSeconds.reduce(0, +)
        shares = r.profile.mapValues { $0 / total }
    }

    func encode(to encoder: any Encoder) throws {
        try core.encode(to: encoder)
        var s = encoder.container(keyedBy: JSONField.DataKey.self)
        for (k, v) in shares { try s.encode(v, forKey: JSONField.DataKey(stringValue: "share_" + k.replacingOccurrences(of: " ", with: "_"))) }
    }
}

struct BenchGemm: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm", abstract: "Time cblas_sgemm at the model's shapes: the machine's practical GFLOP/s limit.")

    @OptionGroup var bench: BenchOptions
    @Option(help: "Tokens per GEMM (batch x seq).") var tokens: Int = 2048
    @Flag(help: "Also the fused projections and the backward's products.") var all = false

    func run() async throws {
        try await bench.measuring { c in
            let shapes = GemmBenchmark.shapes(c, tokens: tokens, all: all)
            GemmBenchmark.warmUp(shapes.first { $0.name == "lm_head" }!)
            for s in shapes {
                let (a, b, out) = GemmBenchmark.operands(s)
                try bench.report("gemm") {
                    GemmBenchmark.multiply(s, a, b, out)
                } fields: { med in
                    GemmFields(
                        shape: s.name, M: s.M, N: s.N, K: s.K, transA: s.transA, transB: s.transB, blas: blasConfig,
                        gflops: s.flops / med / 1e9, tokensPerSecond: Double(tokens) / med)
                }
            }
        }
    }
}

/// The fields of a `bench gemm` row.
struct GemmFields: Encodable {
    var shape: String
    var M, N, K: Int
    var transA, transB: Bool
    var blas: String
    var gflops, tokensPerSecond: Double
    enum CodingKeys: String, CodingKey {
        case shape, M, N, K, blas, gflops
        case transA = "trans_a"
        case transB = "trans_b"
        case tokensPerSecond = "tokens_per_s"
    }
}

struct BenchPrefill: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prefill", abstract: "Time forward passes (no gradients) over batch x seq random tokens.")

    @OptionGroup var bench: BenchOptions
    @Option(help: "Sequences per pass.") var batch: Int = 8
    @Option(help: "Tokens per sequence.") var seq: Int = 256

    func run() async throws {
        try await bench.measuring { cfg in
            let model = DecoderModel(config: cfg, seed: 1)
            try model.setBatch(ids: Benchmark.tokens(batch * seq, vocab: cfg.vocabSize), batch: batch, seq: seq)
            let n = Double(batch * seq), fpt = cfg.forwardFlopsPerToken(seq: seq)
            try bench.report("prefill") {
                model.forward(batch: batch, seq: seq)
            } fields: { med in
                PrefillFields(batch: batch, seq: seq, flopsPerToken: fpt, tokensPerSecond: n / med, gflops: fpt * n / med / 1e9)
            }
        }
    }
}

/// The fields of a `bench prefill` row.
struct PrefillFields: Encodable {
    var batch, seq: Int
    var flopsPerToken, tokensPerSecond, gflops: Double
    enum CodingKeys: String, CodingKey {
        case batch, seq, gflops
        case flopsPerToken = "flops_per_token"
        case tokensPerSecond = "tokens_per_s"
    }
}

struct BenchDecode: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode", abstract: "Time greedy decoding with a KV cache: prompt tokens, then new tokens (no early stop).")

    @Option(help: "Prompts decoded together.") var batch: Int = 1
    @Option(help: "Prompt tokens.") var prompt: Int = 32
    @Option(help: "Generated tokens per prompt.") var newTokens: Int = 128
    @Option(help: "Decode this model directory (e.g. a Mix-MoE model) instead of a random model of --config.") var model: String?
    @Option(help: "What weight matrices are held in: f32 or bf16 (compute stays fp32).") var dtype: DType = .f32
    @OptionGroup var bench: BenchOptions

    func run() async throws {
        try await bench.measuring { named in
            let m = try model.map { try DecoderModel.load(directory: URL(fileURLWithPath: $0), dtype: dtype) } ?? DecoderModel(config: named, seed: 1)
            if model == nil && dtype == .bf16 {
                m.store.holdFrozenMatrices(as: .bf16, trainable: { _ in false })
            }
            let cfg = m.config
            let gen = Generator(model: m, stopTokens: [])
            let all = Benchmark.tokens(batch * prompt, vocab: cfg.vocabSize)
            let prompts = (0..<batch).map { Array(all[($0 * prompt)..<(($0 + 1) * prompt)]) }
            // weight bytes read per generated step (every matrix once), for a bandwidth estimate
            let weightBytes = Double(cfg.matmulParameters * dtype.bytes), total = Double(batch * (prompt + newTokens))
            let fpt = cfg.forwardFlopsPerToken(seq: prompt + newTokens)
            try bench.report("decode") {
                _ = try gen.greedy(prompts, maxNew: Array(repeating: newTokens, count: batch))
            } fields: { med in
                DecodeFields(
                    batch: batch, prompt: prompt, newTokens: newTokens, model: model ?? bench.config, dtype: dtype.rawValue,
                    tokensPerSecond: Double(batch * newTokens) / med, weightGBPerSecond: weightBytes * Double(newTokens) / med / 1e9,
                    gflops: fpt * total / med / 1e9)
            }
        }
    }
}

/// The fields of a `bench decode` row.
struct DecodeFields: Encodable {
    var batch, prompt, newTokens: Int
    var model, dtype: String
    var tokensPerSecond, weightGBPerSecond, gflops: Double
    enum CodingKeys: String, CodingKey {
        case batch, prompt, model, dtype, gflops
        case newTokens = "new_tokens"
        case tokensPerSecond = "tokens_per_s"
        case weightGBPerSecond = "weight_gb_per_s"
    }
}

struct BenchMemory: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "memory",
        abstract: "Measure memory-read bandwidth (sum of a buffer far larger than the caches): the limit of batch-1 decoding.")

    @OptionGroup var bench: BenchOptions
    @Option(help: "Buffer size in MiB.") var mib: Int = 512

    func run() async throws {
        try await bench.measuring { _ in
            let m = MemoryBandwidth(mib: mib)
            try bench.report("memory") {
                m.sweep()
            } fields: { med in
                MemoryFields(mib: mib, readGBPerSecond: Double(m.bytes) / med / 1e9, checksum: Double(m.checksum))
            }
        }
    }
}

/// The fields of a `bench memory` row.
struct MemoryFields: Encodable {
    var mib: Int
    var readGBPerSecond, checksum: Double
    enum CodingKeys: String, CodingKey {
        case mib, checksum
        case readGBPerSecond = "read_gb_per_s"
    }
}
