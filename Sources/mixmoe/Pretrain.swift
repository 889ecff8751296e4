import ArgumentParser
import Foundation
import MixMoE
import MixMoECommandLine

struct Pretrain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a dense Llama-architecture model from scratch (or continue one) on monolingual text (packed sequences).")

    @Option(help: ArgumentHelp(namedConfigHelp + " vocab_size is set from the tokenizer.")) var config: String
    @Option(help: "tokenizer.json used to tokenise the text (copied into the output).") var tokenizer: String
    @Option(help: "Output model directory (Hugging Face layout).") var out: String
    @Option(help: "Continue pretraining from this model directory's weights (fresh optimiser and schedule) instead of random weights.") var initFrom: String?
    @Option(help: "Windows of the data order already consumed (e.g. by the run --init-from continues); training starts there, so no data repeats.")
    var dataStart: Int = 0
    @OptionGroup var train: TrainingOptions
    @OptionGroup var run: RunOptions
    @OptionGroup var compute: ComputeOptions
    @Argument(help: "Text files, one segment per line (or JSON lines {\"text\": ...}).") var files: [String]

    func validate() throws {
        guard !files.isEmpty else { throw ValidationError("give at least one text file") }
    }

    func run() async throws {
        try await compute.run(distributed: true) {
            let settings = try train.settings(defaultLR: 1e-3)
            var job = PretrainingJob(
                config: try ModelConfig.resolve(config), configSource: config, tokenizer: URL(fileURLWithPath: tokenizer), files: files,
                out: URL(fileURLWithPath: out), settings: settings, threads: compute.threads)
            (job.initFrom, job.dataStart, job.log) = (initFrom.map { URL(fileURLWithPath: $0) }, dataStart, { printErr($0) })
            try job.run(plan: { try train.planMemory(config: $0, freeze: .full, settings: settings) }) { run.configure($0, out: job.out) }
        }
    }
}
