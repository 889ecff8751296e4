import ArgumentParser
import Foundation
import MixMoE

struct Pretrain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a dense Llama-architecture model from scratch on monolingual text (packed sequences).")

    @Option(help: "Named config (tiny, small) or a config.json. vocab_size is set from the tokenizer.")
    var config: String
    @Option(help: "tokenizer.json used to tokenise the text (copied into the output).")
    var tokenizer: String
    @Option(help: "Optimiser steps.")
    var steps: Int
    @Option(help: "Output model directory (Hugging Face layout).")
    var out: String
    @Option(help: "Seed for initial weights and data order.")
    var seed: UInt64 = 0
    @Option(help: "Tokens per optimiser step (accumulated over micro-batches).")
    var batchTokens: Int = 16384
    @Option(help: "Tokens per sequence.")
    var seq: Int = 256
    @Option(help: "Sequences per micro-batch (memory vs. speed).")
    var microBatch: Int = 8
    @Option(help: "Peak learning rate (cosine schedule, 3% linear warm-up).")
    var lr: Double = 1e-3
    @Option(help: "AdamW weight decay.")
    var weightDecay: Double = 0
    @Option(help: "Print progress every N steps.")
    var logEvery: Int = 10
    @OptionGroup var compute: ComputeOptions
    @Argument(help: "Text files, one segment per line.")
    var files: [String]

    func run() async throws {
        try compute.apply()
        try await reportingErrors {
            guard !files.isEmpty else { throw ValidationError("give at least one text file") }
            guard steps > 0, seq > 1, microBatch > 0, batchTokens >= seq else {
                throw ValidationError("need --steps > 0, --seq > 1, --micro-batch > 0 and --batch-tokens >= --seq")
            }
            let tok = try BPETokenizer.load(URL(fileURLWithPath: tokenizer))
            var cfg = try resolveConfig(config)
            cfg.vocabSize = tok.vocabSize
            cfg.bosTokenId = tok.prefixIds.first.map(Int.init)
            let eos = tok.id("<|end_of_text|>") ?? tok.id("<|endoftext|>") ?? tok.id("</s>")
            cfg.eosTokenIds = eos.map { [Int($0)] } ?? []
            cfg.maxPositionEmbeddings = max(cfg.maxPositionEmbeddings, seq)
            try cfg.validate(file: config)

            let t0 = monotonicSeconds()
            let stream = try PackedDataset.tokenize(files: files.map { URL(fileURLWithPath: $0) }, tokenizer: tok, eos: eos) {
                printErr("tokenised \($0): \($1) tokens")
            }
            let data = PackedDataset(tokens: stream, seq: seq, seed: seed)
            guard data.windowCount > 0 else { throw DataError.empty(files.joined(separator: ", ")) }
            let seqsPerStep = max(1, batchTokens / seq)
            printErr(String(format: "data: %d tokens, %d windows of %d; %d sequences per step (%.2f epochs over %d steps); tokenising took %.1f s",
                            stream.count, data.windowCount, seq, seqsPerStep,
                            Double(steps * seqsPerStep) / Double(data.windowCount), steps, monotonicSeconds() - t0))

            let model = DecoderModel(config: cfg, seed: seed)
            printErr("model: \(model.store.count) parameters (\(cfg.numHiddenLayers) layers, d=\(cfg.hiddenSize), ff=\(cfg.intermediateSize), vocab=\(cfg.vocabSize))")
            let trainer = Trainer(model: model, schedule: CosineSchedule(peak: lr, totalSteps: steps), weightDecay: Float(weightDecay))
            let outURL = URL(fileURLWithPath: out)
            try FileManager.default.createDirectory(at: outURL, withIntermediateDirectories: true)
            var log = ""
            let start = monotonicSeconds()
            var tokensDone = 0
            for s in 0..<steps {
                var micro: [TokenBatch] = []
                var left = seqsPerStep
                while left > 0 { let k = min(microBatch, left); micro.append(data.nextBatch(sequences: k)); left -= k }
                let st = try trainer.trainStep(micro)
                tokensDone += seqsPerStep * seq
                log += String(format: "{\"step\": %d, \"loss\": %.5f, \"lr\": %.6g, \"grad_norm\": %.4f, \"tokens\": %d, \"elapsed_s\": %.2f}\n",
                              s + 1, st.loss, st.lr, st.gradNorm, tokensDone, monotonicSeconds() - start)
                if (s + 1) % logEvery == 0 || s == 0 || s + 1 == steps {
                    let el = monotonicSeconds() - start
                    let tps = Double(tokensDone) / el
                    let eta = el / Double(s + 1) * Double(steps - s - 1)
                    printErr(String(format: "step %d/%d  loss %.4f  lr %.2e  |g| %.3f  %.0f tok/s  epoch %.2f  ETA %@",
                                    s + 1, steps, st.loss, st.lr, st.gradNorm, tps, data.epochs, formatDuration(eta)))
                }
            }
            try model.save(directory: outURL)
            try AtomicFile.write(Data(contentsOf: URL(fileURLWithPath: tokenizer)), to: outURL.appendingPathComponent("tokenizer.json"))
            try AtomicFile.write(log, to: outURL.appendingPathComponent("train_log.jsonl"))
            printErr(String(format: "wrote %@ (%d steps, %.1f min)", out, steps, (monotonicSeconds() - start) / 60))
        }
    }
}

func formatDuration(_ s: Double) -> String {
    guard s.isFinite else { return "?" }
    let t = Int(s.rounded())
    return t >= 3600 ? String(format: "%dh%02dm", t / 3600, (t % 3600) / 60) : String(format: "%dm%02ds", t / 60, t % 60)
}
