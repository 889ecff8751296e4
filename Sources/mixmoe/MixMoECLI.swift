import ArgumentParser
import Foundation
import MixMoE

@main
struct MixMoECLI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mixmoe",
        abstract: "Mix-MoE for multilingual MT: load or pretrain a Llama-family model, upcycle, train, translate, score.",
        subcommands: [
            Demo.self, Experiment.self, Baseline.self, ModelCardCommand.self, Upcycle.self, Train.self, Translate.self,
            Score.self, Evaluate.self, Forward.self, Init.self, Pretrain.self, Perplexity.self, Bench.self, Tokenize.self,
            TokenizerCommand.self,
        ])
}

/// Runs a command body; library errors print their message (file, field, hint) to stderr and
/// exit 1; an interrupted training run exits 128 + the signal after its checkpoint.
func reportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let e as ValidationError {
        throw e
    } catch let e as ExitCode {
        throw e
    } catch let e as TrainingInterrupted {
        printErr("mixmoe: \(e.localizedDescription)")
        throw ExitCode(128 + e.signal)
    } catch {
        printErr("mixmoe: error: \(error.localizedDescription)")
        throw ExitCode(1)
    }
}

func printErr(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

/// Prints one JSON object (sorted keys) as a line.
func emitJSON(_ obj: [String: Any]) {
    let d = try! JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
    print(String(decoding: d, as: UTF8.self))
    fflush(nil)  // flush every stream (stdout is a C global Swift 6 will not touch)
}

/// Lines of a file, or of stdin when `path` is nil.
func readInput(_ path: String?) throws -> [String] {
    if let path { return try readLines(URL(fileURLWithPath: path)) }
    var lines: [String] = []
    while let l = readLine(strippingNewline: true) { lines.append(l) }
    return lines
}
