import ArgumentParser
import Foundation
import MixMoE

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks (release build). One JSON object per measurement on stdout.",
        subcommands: [BenchTrain.self, BenchPrefill.self, BenchDecode.self, BenchGemm.self, BenchMemory.self])
}

/// The benchmarks' fixed pseudo-random token ids (same stream for every case).
func benchTokens(_ n: Int, vocab: Int) -> [Int32] {
    var rng = SplitMix64(seed: 7)
    return (0..<n).map { _ in Int32(rng.next() % UInt64(vocab)) }
}

func timed(reps: Int, warmup: Int, _ body: () throws -> Void) rethrows -> [Double] {
    for _ in 0..<warmup { try body() }
    return try (0..<reps).map { _ in
        let t0 = monotonicSeconds()
        try body()
        return monotonicSeconds() - t0
    }
}

struct BenchTrain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "Time full training steps (forward, backward, clip, AdamW) on random tokens.")

    @Option(help: "Named config (tiny, base, small) or config.json.")
    var config: String = "small"
    @Option(help: "Training method: full (dense, every parameter), lora (rank 8 on every linear layer, base frozen), stage1 or stage2 (Mix-MoE with the MoE options below).")
    var method: BenchMethod = .full
    @OptionGroup var moe: MoEOptionGroup
    @Flag(help: "Use the explicit [h ; T h] router instead of the folded one (stage1/stage2).")
    var explicitRouter = false
    @Flag(help: "Also report the share of step time in router, attention core and optimiser.")
    var profile = false
    @Option(help: "Sequences per step.")
    var batch: Int = 8
    @Option(help: "Tokens per sequence.")
    var seq: Int = 256
    @OptionGroup var bench: BenchOptions
    @OptionGroup var compute: ComputeOptions

    enum BenchMethod: String, ExpressibleByArgument, CaseIterable { case full, lora, stage1, stage2 }

    func run() async throws {
        try compute.apply()
        try await reportingErrors {
            let cfg = try ModelConfig.resolve(config)
            var model = DecoderModel(config: cfg, seed: 1)
            switch method {
            case .full: break
            case .lora:
                model = try Baselines.addLoRA(model)
                FreezePlan.lora.apply(to: model)
            case .stage1, .stage2:
                model = try Upcycling.prepare(try Upcycling.upcycle(model, try moe.options.config(for: cfg)), stage: method == .stage1 ? 1 : 2,
                                              name: "the benchmark model")
                model.moe.explicitRouter = explicitRouter
            }
            let n = batch * seq
            let ids = benchTokens(n, vocab: cfg.vocabSize)
            var targets = Array(ids.dropFirst()) + [-1]
            for s in 1...batch { targets[s * seq - 1] = -1 }
            // one step = one micro-batch of batch x seq tokens, through the same TrainingRun as every command
            let settings = TrainingSettings(steps: bench.warmup + bench.reps, batchTokens: n, microTokens: n, seq: seq, lr: 1e-4, warmup: 0)
            let run = TrainingRun(model: model, settings: settings,
                                  source: RepeatingSource(TokenBatch(ids: ids, targets: targets, batch: batch, seq: seq)))
            var times: [Double] = []
            let warm = bench.warmup, prof = profile
            if warm == 0 { Profile.enabled = prof; Profile.reset() }
            run.progress = { p in
                if p.step > warm { times.append(p.stepSeconds) }
                if p.step == warm { Profile.enabled = prof; Profile.reset() }
            }
            try run.run()
            Profile.enabled = false
            let (med, lo, hi) = summary(times)
            // FLOPs of the dense model (a top-1 MoE layer of n slices costs what the dense FFN costs)
            let fpt = cfg.trainFlopsPerToken(seq: seq)
            var row: [String: Any] = ["case": "train", "method": method.rawValue, "config": config, "batch": batch, "seq": seq,
                      "threads": compute.threads, "reps": bench.reps, "median_s": med, "min_s": lo, "max_s": hi,
                      "tokens_per_s": Double(n) / med, "flops_per_token": fpt, "gflops": fpt * Double(n) / med / 1e9,
                      "peak_rss_mb": peakResidentMiB(), "implementation": "mixmoe",
                      "trainable_params": model.store.trainableCount,
                      // params + grads + Adam moments + activations/scratch, from the buffers' shapes
                      "buffers_peak_mb": Double(FloatBuffer.peakBytes) / 1_048_576]
            if method == .stage1 || method == .stage2 {
                row["router"] = explicitRouter ? "explicit" : "folded"; row["experts"] = moe.experts
            }
            if profile {
                let total = times.reduce(0, +)
                for (k, v) in Profile.totals { row["share_" + k.replacingOccurrences(of: " ", with: "_")] = v / total }
            }
            emitJSON(row)
        }
    }
}

struct BenchGemm: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm", abstract: "Time cblas_sgemm at the model's shapes: the machine's practical GFLOP/s limit.")

    @Option(help: "Named config (tiny, base, small) or config.json whose shapes to use.")
    var config: String = "small"
    @Option(help: "Tokens per GEMM (batch x seq).")
    var tokens: Int = 2048
    @OptionGroup var bench: BenchOptions
    @OptionGroup var compute: ComputeOptions

    func run() async throws {
        try compute.apply()
        try await reportingErrors {
            let c = try ModelConfig.resolve(config)
            let d = c.hiddenSize, f = c.intermediateSize
            // (name, M, N, K): the forward projections on a token batch
            let shapes = [("qkvo", tokens, d, d), ("ffn_up", tokens, f, d), ("ffn_down", tokens, d, f),
                          ("lm_head", tokens, c.vocabSize, d)]
            for (name, M, N, K) in shapes {
                let a = FloatBuffer(count: M * K), b = FloatBuffer(count: N * K), out = FloatBuffer(count: M * N)
                for i in 0..<a.count { a[i] = Float(i % 7) * 0.1 }
                for i in 0..<b.count { b[i] = Float(i % 5) * 0.1 }
                let times = timed(reps: bench.reps, warmup: bench.warmup) {
                    sgemm(transA: false, transB: true, M: M, N: N, K: K, A: a.ptr, lda: K, B: b.ptr, ldb: K, C: out.ptr, ldc: N)
                }
                let (med, lo, hi) = summary(times)
                let flops = 2.0 * Double(M) * Double(N) * Double(K)
                emitJSON(["case": "gemm", "shape": name, "M": M, "N": N, "K": K, "threads": compute.threads,
                          "median_s": med, "min_s": lo, "max_s": hi, "gflops": flops / med / 1e9,
                          "tokens_per_s": Double(M) / med, "peak_rss_mb": peakResidentMiB(), "blas": blasConfig])
            }
        }
    }
}

struct BenchPrefill: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prefill", abstract: "Time forward passes (no gradients) over batch x seq random tokens.")

    @Option(help: "Named config (tiny, base, small) or config.json.")
    var config: String = "small"
    @Option(help: "Sequences per pass.")
    var batch: Int = 8
    @Option(help: "Tokens per sequence.")
    var seq: Int = 256
    @OptionGroup var bench: BenchOptions
    @OptionGroup var compute: ComputeOptions

    func run() async throws {
        try compute.apply()
        try await reportingErrors {
            let cfg = try ModelConfig.resolve(config)
            let model = DecoderModel(config: cfg, seed: 1)
            let ids = benchTokens(batch * seq, vocab: cfg.vocabSize)
            try model.setBatch(ids: ids, batch: batch, seq: seq)
            let times = timed(reps: bench.reps, warmup: bench.warmup) { model.forward(batch: batch, seq: seq) }
            let (med, lo, hi) = summary(times)
            let n = Double(batch * seq), fpt = cfg.forwardFlopsPerToken(seq: seq)
            emitJSON(["case": "prefill", "config": config, "batch": batch, "seq": seq, "threads": compute.threads, "reps": bench.reps,
                      "median_s": med, "min_s": lo, "max_s": hi, "tokens_per_s": n / med, "flops_per_token": fpt,
                      "gflops": fpt * n / med / 1e9, "peak_rss_mb": peakResidentMiB(), "implementation": "mixmoe"])
        }
    }
}

struct BenchDecode: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode", abstract: "Time greedy decoding with a KV cache: prompt tokens, then new tokens (no early stop).")

    @Option(help: "Named config (tiny, base, small) or config.json.")
    var config: String = "small"
    @Option(help: "Prompts decoded together.")
    var batch: Int = 1
    @Option(help: "Prompt tokens.")
    var prompt: Int = 32
    @Option(help: "Generated tokens per prompt.")
    var newTokens: Int = 128
    @OptionGroup var bench: BenchOptions
    @OptionGroup var compute: ComputeOptions

    func run() async throws {
        try compute.apply()
        try await reportingErrors {
            let cfg = try ModelConfig.resolve(config)
            let model = DecoderModel(config: cfg, seed: 1)
            let gen = Generator(model: model, stopTokens: [])
            let all = benchTokens(batch * prompt, vocab: cfg.vocabSize)
            let prompts = (0..<batch).map { Array(all[($0 * prompt)..<(($0 + 1) * prompt)]) }
            let times = try timed(reps: bench.reps, warmup: bench.warmup) {
                _ = try gen.greedy(prompts, maxNew: Array(repeating: newTokens, count: batch))
            }
            let (med, lo, hi) = summary(times)
            // weight bytes read per generated step (every matrix once), for a bandwidth estimate
            let weightBytes = Double(cfg.matmulParameters) * 4
            let steps = Double(newTokens)
            emitJSON(["case": "decode", "config": config, "batch": batch, "prompt": prompt, "new_tokens": newTokens,
                      "threads": compute.threads, "reps": bench.reps, "median_s": med, "min_s": lo, "max_s": hi,
                      "tokens_per_s": Double(batch * newTokens) / med, "weight_gb_per_s": weightBytes * steps / med / 1e9,
                      "gflops": cfg.forwardFlopsPerToken(seq: prompt + newTokens) * Double(batch * (prompt + newTokens)) / med / 1e9,
                      "peak_rss_mb": peakResidentMiB(), "implementation": "mixmoe"])
        }
    }
}

struct BenchMemory: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "memory",
        abstract: "Measure memory-read bandwidth (sum of a buffer far larger than the caches): the limit of batch-1 decoding.")

    @Option(help: "Buffer size in MiB.")
    var mib: Int = 512
    @OptionGroup var bench: BenchOptions
    @OptionGroup var compute: ComputeOptions

    func run() async throws {
        try compute.apply()
        try await reportingErrors {
            let n = mib * 1_048_576 / 4
            let buf = FloatBuffer(count: n)
            for i in 0..<n { buf[i] = Float(i & 1023) }   // touch every page before timing
            var sink: Float = 0
            let chunks = Parallel.threads
            let partial = FloatBuffer(count: chunks)
            let times = timed(reps: bench.reps, warmup: bench.warmup) {
                let p = buf.ptr, q = partial.ptr
                Parallel.forChunksIndexed(n, grain: 1 << 20) { c, r in
                    // 8 independent accumulators so the loop is bound by loads, not by add latency
                    var acc = SIMD8<Float>()
                    var i = r.lowerBound
                    while i + 8 <= r.upperBound {
                        acc += UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
                        i += 8
                    }
                    var t = acc.sum()
                    while i < r.upperBound { t += p[i]; i += 1 }
                    q[c] = t
                }
                for c in 0..<chunks { sink += q[c] }
            }
            let (med, lo, hi) = summary(times)
            emitJSON(["case": "memory", "mib": mib, "threads": compute.threads, "reps": bench.reps, "median_s": med, "min_s": lo,
                      "max_s": hi, "read_gb_per_s": Double(n * 4) / med / 1e9, "checksum": Double(sink), "implementation": "mixmoe"])
        }
    }
}
