import ArgumentParser
import Foundation
import MixMoE

@main
struct MixMoECLI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mixmoe",
        abstract: "Mix-MoE for multilingual MT: load or pretrain a Llama-family model, upcycle, train, translate, score.",
        subcommands: [Demo.self, Experiment.self, Baseline.self, ModelCard.self, Upcycle.self, Train.self, Translate.self, Score.self, Evaluate.self, Forward.self, Init.self, Pretrain.self, Perplexity.self, Bench.self, Tokenize.self,
                      TokenizerCommand.self])
}

/// Options every computing command shares.
struct ComputeOptions: ParsableArguments {
    @Option(help: "Threads for all numeric work (ours and OpenBLAS's). Results are deterministic for a given seed and thread count.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    func apply() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        Parallel.setThreads(threads)
    }
}

/// Runs a command body; library errors print their message (file, field, hint) to stderr and exit 1.
func reportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let e as ValidationError {
        throw e
    } catch let e as ExitCode {
        throw e
    } catch {
        FileHandle.standardError.write(Data("mixmoe: error: \(error.localizedDescription)\n".utf8))
        throw ExitCode(1)
    }
}

func printErr(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

/// A run-time failure of a command (not a malformed argument): message on stderr, exit 1.
struct CLIError: LocalizedError {
    let message: String
    init(_ m: String) { message = m }
    var errorDescription: String? { message }
}
