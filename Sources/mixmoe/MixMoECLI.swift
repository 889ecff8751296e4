import ArgumentParser
import Foundation
import MixMoE
import MixMoECommandLine

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

/// Prints one JSON object (sorted keys) as a line; a non-finite number prints as a string.
func emitJSON<T: Encodable>(_ value: T) {
    let enc = JSONEncoder()
    enc.outputFormatting = [.sortedKeys]
    enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    let d = try! enc.encode(value)
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
