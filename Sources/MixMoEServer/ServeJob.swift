import Foundation
import MixMoE
import Synchronization

/// One `mixmoe serve`: checks the model directory before the port is taken, loads the weights on a
/// thread of their own (`/health` answers 503 until they are in), serves until SIGTERM or SIGINT,
/// then finishes the requests in flight and returns.
public struct ServeJob: Sendable {
    public var model: URL
    /// A tokenizer.json instead of the model directory's.
    public var tokenizer: String?
    public var dtype: DType
    public var host: String
    /// 0: any free port (the one chosen is logged).
    public var port: Int
    /// Generations decoded together (KV cache rows of the model's whole context each).
    public var maxBatch: Int
    /// Requests that may wait for a free row.
    public var maxQueue: Int
    public var log: @Sendable (String) -> Void

    public init(
        model: URL, tokenizer: String?, dtype: DType, host: String, port: Int, maxBatch: Int, maxQueue: Int,
        log: @escaping @Sendable (String) -> Void
    ) {
        (self.model, self.tokenizer, self.dtype, self.host, self.port) = (model, tokenizer, dtype, host, port)
        (self.maxBatch, self.maxQueue, self.log) = (maxBatch, maxQueue, log)
    }

    public func run() async throws {
        // a wrong directory fails now, before the port is taken; the weights load in the background
        let config = try ModelConfig.load(ModelDirectory(model).config)
        _ = try BPETokenizer.load(URL(fileURLWithPath: tokenizer ?? ModelDirectory(model).tokenizer.path))
        let kv = MemoryPlan.kvCacheBytes(config, rows: maxBatch, positions: config.maxPositionEmbeddings)
        log(
            String(
                format: "mixmoe serve: KV cache of %d rows x %d positions: %.2f GB (--max-batch sets the rows)", maxBatch,
                config.maxPositionEmbeddings, Double(kv) / 1e9))
        let state = ServerState()
        let job = self
        let loader = Thread {
            let t0 = monotonicSeconds()
            do {
                let (m, tok) = try DecoderModel.loadWithTokenizer(directory: job.model, tokenizer: job.tokenizer, dtype: job.dtype)
                state.ready(
                    TranslationService(
                        model: m, tokenizer: tok, modelID: job.model.standardizedFileURL.lastPathComponent, rows: job.maxBatch,
                        maxQueue: job.maxQueue))
                job.log(String(format: "mixmoe serve: model loaded in %.1f s; ready", monotonicSeconds() - t0))
            } catch {
                job.log("mixmoe serve: error: \(error.localizedDescription)")
                Foundation.exit(1)
            }
        }
        loader.start()
        let listening = Mutex(false)
        let app = MixMoEServer.application(state: state, host: host, port: port) { [host, log] p in
            listening.withLock { $0 = true }
            log("mixmoe serve: listening on http://\(host):\(p)/ (SIGTERM or Ctrl-C stops after the requests in flight)")
        }
        do {
            try await app.runService()
        } catch  where !listening.withLock({ $0 }) {
            throw ServeError.cannotListen(host: host, port: port, detail: "\(error)")
        }
        // the HTTP server has drained: finish what the engine still holds
        state.loaded?.engine.shutdown()
        log("mixmoe serve: stopped")
    }
}
