import ArgumentParser
import Foundation
import MixMoE
import MixMoECommandLine
import MixMoEServer

/// `mixmoe-serve` (also reached as `mixmoe serve`): the HTTP front end, an executable of its own so
/// that `mixmoe` does not link Hummingbird and SwiftNIO (a clean release build of `mixmoe` alone
/// is minutes shorter, which keeps the demo's bound on a fresh clone).
@main
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mixmoe-serve",
        abstract: "Serve a model over HTTP: /v1/translate, OpenAI-style /v1/completions and /v1/chat/completions, /v1/models, /health, and a web page at /.",
        discussion: """
            Every request's generations run together in one continuous-batching loop (--max-batch cache rows; a beam search \
            takes one row per beam). /health answers 503 until the weights are loaded. SIGTERM or SIGINT: stop accepting, \
            finish the requests in flight, exit. Endpoints and fields: docs/SERVER.md.
            """)

    @OptionGroup var model: TranslatorModelOption
    @Option(help: "Address to listen on (127.0.0.1: this machine only; 0.0.0.0: every interface).") var host = "127.0.0.1"
    @Option(help: "Port (0: any free port; the one chosen is printed).") var port = 8080
    @Option(help: "Generations decoded together (KV cache rows of the model's whole context each).") var maxBatch = 16
    @Option(help: "Requests that may wait for a free row; beyond that the server answers 503 with Retry-After.") var maxQueue = 256
    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        guard maxBatch >= 1 else { throw ValidationError("--max-batch must be at least 1") }
        guard maxQueue >= 0 else { throw ValidationError("--max-queue must be at least 0") }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535") }
    }

    func run() async throws {
        try await compute.run {
            try await ServeJob(
                model: model.url, tokenizer: model.tokenizer, dtype: model.dtype, host: host, port: port, maxBatch: maxBatch, maxQueue: maxQueue,
                log: { printErr($0) }
            ).run()
        }
    }
}
