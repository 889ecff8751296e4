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
            Score.self, Evaluate.self, Forward.self, Generate.self, Init.self, Pretrain.self, Perplexity.self, Bench.self, Tokenize.self,
            TokenizerCommand.self, Serve.self, Report.self, Finetune.self,
        ])
}

/// Runs a command body; library errors print their message (file, field, hint) to stderr and
/// exit 1; an interrupted training run exits 128 + the signal after its checkpoint. In an MPI job
/// of several ranks an error on one rank ends every rank (MPI_Abort), so none waits forever in a
/// collective; the interrupted ranks stop together and leave MPI cleanly.
func reportingErrors(_ body: () async throws -> Void) async throws {
    let world = { Distributed.world }
    let who = { world().size > 1 ? "mixmoe (rank \(world().rank) of \(world().size))" : "mixmoe" }
    do {
        try await body()
    } catch let e as ValidationError {
        throw e
    } catch let e as ExitCode {
        throw e
    } catch let e as TrainingInterrupted {
        if world().isRoot { printErr("\(who()): \(e.localizedDescription)") }
        Distributed.finish()
        throw ExitCode(128 + e.signal)
    } catch {
        printAnyRank("\(who()): error: \(error.localizedDescription)")
        if world().size > 1 { world().abort(code: 1) }
        throw ExitCode(1)
    }
}

/// A message on stderr; in an MPI job only rank 0's (the ranks run the same command).
func printErr(_ s: String) { if Distributed.world.isRoot { printAnyRank(s) } }
func printAnyRank(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

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
