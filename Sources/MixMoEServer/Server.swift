import Foundation
import Hummingbird
import MixMoE
import Synchronization

/// What `mixmoe serve` serves: a loaded model, its translator (prompts, length rule, output text)
/// and the continuous-batching engine all requests share.
public final class TranslationService: @unchecked Sendable {
    public let engine: ServingEngine
    public let translator: Translator
    /// The name clients see in `model` fields (the model directory's name).
    public let modelID: String
    let created = Int(Date().timeIntervalSince1970)
    let eos: Set<Int32>
    /// EOS and every token containing a newline (translations and chat replies are one line).
    var newlineStops: Set<Int32> { translator.generator.stopTokens }

    /// Loads nothing: wraps a loaded model. `rows` cache rows (generations in flight), `maxQueue`
    /// requests waiting at most. Starts the engine's thread.
    public init(model: DecoderModel, tokenizer: BPETokenizer, modelID: String, rows: Int, maxQueue: Int) {
        translator = Translator(model: model, tokenizer: tokenizer)
        eos = Set(model.config.eosTokenIds.map(Int32.init))
        engine = ServingEngine(generator: translator.generator, rows: rows, maxQueue: maxQueue)
        self.modelID = modelID
        engine.start()
    }

    func submit(_ r: GenerationRequest) throws -> Generation {
        do { return try engine.submit(r) } catch let e as EngineError { throw APIError.from(e) }
    }
}

/// The server's phase: loading the model (`/health` 503), ready, or failed to load.
public final class ServerState: Sendable {
    enum Phase: @unchecked Sendable {
        case loading
        case ready(TranslationService)
        case failed(String)
    }
    private let phase = Mutex<Phase>(.loading)

    public init() {}

    public func ready(_ s: TranslationService) { phase.withLock { $0 = .ready(s) } }
    public func failed(_ message: String) { phase.withLock { $0 = .failed(message) } }

    /// The service, or 503 while loading (or after a failed load).
    func service() throws -> TranslationService {
        switch phase.withLock({ $0 }) {
        case .ready(let s): return s
        case .loading: throw APIError.unavailable("the model is loading", retryAfter: 2)
        case .failed(let m): throw APIError(status: .serviceUnavailable, message: "the model failed to load: \(m)")
        }
    }

    /// The engine, once loaded (for shutdown).
    public var loaded: TranslationService? {
        if case .ready(let s) = phase.withLock({ $0 }) { return s }
        return nil
    }
}

/// Routes and options of `mixmoe serve`; the HTTP stack is Hummingbird 2.
public enum MixMoEServer {
    /// Request bodies above this size are refused (413).
    public static let maxBody = 1 << 20

    /// The router of every endpoint (see docs/SERVER.md).
    public static func router(_ state: ServerState) -> Hummingbird.Router<BasicRequestContext> {
        let router = Hummingbird.Router()
        router.get("/") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: WebPage.html)))
        }
        router.get("/health") { _, _ in health(state) }
        router.get("/v1/models") { _, _ in
            let s = try state.service()
            return json(ModelList(id: s.modelID, created: s.created))
        }
        router.post("/v1/translate") { req, _ in
            try await req.body.consumeWithCancellationOnInboundClose { body in
                try await translate(state.service(), JSONBody(body.collect(upTo: maxBody)))
            }
        }
        router.post("/v1/completions") { req, _ in
            try await req.body.consumeWithCancellationOnInboundClose { body in
                try await complete(state.service(), JSONBody(body.collect(upTo: maxBody)), chat: false)
            }
        }
        router.post("/v1/chat/completions") { req, _ in
            try await req.body.consumeWithCancellationOnInboundClose { body in
                try await complete(state.service(), JSONBody(body.collect(upTo: maxBody)), chat: true)
            }
        }
        // a GET on a POST route is 405 with `Allow: POST` (it exists; the method is wrong), not 404
        for path in ["/v1/translate", "/v1/completions", "/v1/chat/completions"] {
            router.get(RouterPath(path)) { _, _ -> Response in
                throw APIError(status: .methodNotAllowed, message: "\(path) takes POST with a JSON body", allow: "POST")
            }
        }
        return router
    }

    /// The application on `host:port` (port 0: any free port); `onRunning` gets the bound port.
    public static func application(
        state: ServerState, host: String, port: Int, onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        Application(
            router: router(state),
            configuration: .init(address: .hostname(host, port: port), serverName: "mixmoe"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) })
    }

    static func json(_ v: Any, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: JSONValue.encode(v))))
    }

    /// A typed response body (the library's API types), keys sorted as ``JSONValue`` sorts them.
    static func json<T: Encodable>(_ v: T, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: encodeJSON(v))))
    }

    static func encodeJSON<T: Encodable>(_ v: T) -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try! enc.encode(v), as: UTF8.self)  // the API types always encode
    }

    static func health(_ state: ServerState) -> Response {
        do {
            let s = try state.service()
            let (active, waiting) = s.engine.load
            let c = s.engine.counters
            return json([
                "status": "ok", "model": s.modelID, "active": active, "waiting": waiting, "rows": s.engine.rows,
                "max_queue": s.engine.maxQueue, "requests": c.requests, "generated_tokens": c.generatedTokens, "steps": c.steps,
                "average_rows_per_step": c.steps == 0 ? 0 : Double(c.stepRows) / Double(c.steps), "prefills": c.prefills,
                "prefill_tokens": c.prefillTokens, "prefill_seconds": c.prefillSeconds, "step_seconds": c.stepSeconds,
            ])
        } catch let e as APIError {
            var r = json(["status": e.retryAfter == nil ? "failed" : "loading", "message": e.message], status: .serviceUnavailable)
            if let ra = e.retryAfter { r.headers[.retryAfter] = String(ra) }
            return r
        } catch {
            return json(["status": "failed"], status: .internalServerError)
        }
    }

    // MARK: /v1/translate

    static func translate(_ s: TranslationService, _ b: JSONBody) async throws -> Response {
        let src = try b.string("source_lang"), tgt = try b.string("target_lang")
        for (field, code) in [("source_lang", src), ("target_lang", tgt)] where Languages.names[code] == nil {
            throw APIError.badRequest(
                "field '\(field)': unknown language '\(code)'; known codes: \(Languages.names.keys.sorted().joined(separator: ", "))")
        }
        guard let d = Direction("\(src)-\(tgt)"), src != tgt else {
            throw APIError.badRequest("source_lang and target_lang must be two different languages")
        }
        let (texts, single) = try b.strings("text")!
        // more segments than the queue ever holds can never be taken at once: 413, not "retry later"
        let segments = texts.filter { !Translator.isBlank($0) }.count
        guard segments <= max(s.engine.maxQueue, 1) else {
            throw APIError(
                status: .contentTooLarge,
                message:
                    "field 'text': \(segments) segments in one request; this server queues at most \(s.engine.maxQueue) (mixmoe serve --max-queue): send at most that many per request"
            )
        }
        let beam = try b.int("beam", default: 1, min: 1, max: 16)
        let lengthPenalty = try b.double("length_penalty", default: 1, min: 0, max: 10)
        var streams: [Generation?] = []  // nil: a blank text, translated to "" (Translator.isBlank)
        defer { for g in streams { g?.cancel() } }  // a cancelled request (client gone) or an error stops the rest
        var promptTokens = 0
        let start = Date()
        for (i, t) in texts.enumerated() {
            if Translator.isBlank(t) {
                streams.append(nil)
                continue
            }
            let p: (ids: [Int32], maxNew: Int)
            do { p = try s.translator.prompt(t, d) } catch {
                throw APIError(
                    status: .contentTooLarge,
                    message: "text\(single ? "" : "[\(i)]"): the translation prompt does not fit the model's context of \(s.engine.context) tokens")
            }
            promptTokens += p.ids.count
            streams.append(
                try s.submit(
                    GenerationRequest(
                        prompt: p.ids, maxNewTokens: p.maxNew, stopTokens: s.newlineStops, beams: beam, lengthPenalty: lengthPenalty)))
        }
        var out: [String] = [], generated = 0
        for st in streams {
            guard let st else {
                out.append("")
                continue
            }
            let ids = try await result(st).tokens
            generated += ids.count
            out.append(s.translator.text(ids))
        }
        return json([
            "translations": single ? [out[0]] : out, "model": s.modelID,
            "usage": ["prompt_tokens": promptTokens, "completion_tokens": generated, "total_tokens": promptTokens + generated],
            "time_ms": Int(Date().timeIntervalSince(start) * 1000),
        ])
    }

    /// Waits for a generation's result (cancellation of the waiting task cancels the generation:
    /// the stream is dropped).
    static func result(_ st: Generation) async throws -> (tokens: [Int32], reason: FinishReason) {
        for try await ev in st {
            if case .finished(let t, let r) = ev { return (t, r) }
        }
        throw CancellationError()
    }

    // MARK: /v1/completions, /v1/chat/completions

    /// The request's messages in the library's chat template (``ChatTemplate``).
    static func chatPrompt(_ b: JSONBody) throws -> String {
        guard b.has("messages") else { throw APIError.badRequest("missing field 'messages': expected an array of {role, content}") }
        guard let ms = b.objects("messages"), !ms.isEmpty else {
            throw APIError.badRequest("field 'messages': expected a non-empty array of {role, content}")
        }
        var messages: [ChatMessage] = []
        for (i, m) in ms.enumerated() {
            guard let role = m["role"]?.string.flatMap(ChatRole.init(rawValue:)) else {
                throw APIError.badRequest("messages[\(i)].role: expected system, user or assistant")
            }
            guard let content = m["content"]?.string else { throw APIError.badRequest("messages[\(i)].content: expected a string") }
            messages.append(ChatMessage(role: role, content: content))
        }
        return ChatTemplate.prompt(messages)
    }

    static func complete(_ s: TranslationService, _ b: JSONBody, chat: Bool) async throws -> Response {
        let prompts: [String]
        if chat {
            prompts = [try chatPrompt(b)]
        } else {
            prompts = try b.strings("prompt")!.values
            guard !prompts.isEmpty else { throw APIError.badRequest("field 'prompt': expected at least one prompt") }
        }
        guard try b.int("n", default: 1, min: 1) == 1 else { throw APIError.badRequest("field 'n': only 1 is supported") }
        // defaults follow the model's generation_config.json (greedy), as vLLM does; OpenAI's are 16 tokens and temperature 1
        let maxTokens = try b.int("max_tokens", default: 16, min: 0)
        let temperature = try b.double("temperature", default: 0, min: 0, max: 2)
        let seed = try b.int("seed", default: 0, min: 0)
        var stops = try b.strings("stop", required: false)?.values ?? []
        guard stops.count <= 4, !stops.contains("") else { throw APIError.badRequest("field 'stop': up to 4 non-empty strings") }
        if chat { stops.append(ChatTemplate.replyEnd) }
        let stream = try b.bool("stream", default: false)
        let tokens = chat ? s.newlineStops : s.eos
        var jobs: [(ids: [Int32], stream: Generation)] = []
        defer { if !stream { for j in jobs { j.stream.cancel() } } }  // a stop string, a client gone: stop generating
        for (i, p) in prompts.enumerated() {
            let ids = s.translator.tokenizer.encode(p, addSpecialTokens: true)
            guard ids.count < s.engine.context else {
                throw APIError(
                    status: .contentTooLarge,
                    message:
                        "\(chat ? "messages" : prompts.count > 1 ? "prompt[\(i)]" : "prompt"): \(ids.count) tokens; the model's context is \(s.engine.context) tokens, and one must be left to generate"
                )
            }
            jobs.append(
                (
                    ids,
                    try s.submit(
                        GenerationRequest(prompt: ids, maxNewTokens: maxTokens, stopTokens: tokens, temperature: temperature, seed: UInt64(seed)))
                ))
        }
        let id = (chat ? "chatcmpl-" : "cmpl-") + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let created = Int(Date().timeIntervalSince1970)
        let modelID = s.modelID
        if stream {
            guard jobs.count == 1 else { throw APIError.badRequest("field 'stream': streams one prompt at a time") }
            let job = jobs[0]
            let streamer = TextStream(tokenizer: s.translator.tokenizer, eos: s.eos, stops: stops)
            return Response(
                status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                body: ResponseBody { writer in
                    defer { job.stream.cancel() }  // a stop string, or a client gone (write failed): free the row
                    func send(_ text: String?, _ finish: CompletionFinish?, first: Bool = false) async throws {
                        let content: CompletionChoice.Content = chat ? .delta(role: first ? .assistant : nil, content: text) : .text(text ?? "")
                        let chunk = Completion(
                            id: id, object: chat ? .chatCompletionChunk : .textCompletion, created: created, model: modelID,
                            choices: [CompletionChoice(index: 0, content: content, finishReason: finish)])
                        try await writer.write(ByteBuffer(string: "data: \(encodeJSON(chunk))\n\n"))
                    }
                    do {
                        if chat { try await send(nil, nil, first: true) }
                        var reason = CompletionFinish.length
                        loop: for try await ev in job.stream {
                            switch ev {
                            case .token(let t):
                                let (delta, stopped) = streamer.add(t)
                                if !delta.isEmpty { try await send(delta, nil) }
                                if stopped { reason = .stop; break loop }
                            case .finished(_, let r):
                                let rest = streamer.flush()
                                if !rest.isEmpty { try await send(rest, nil) }
                                reason = r == .stop ? .stop : .length
                            }
                        }
                        try await send(nil, reason)
                        try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                        try await writer.finish(nil)
                    } catch {
                        // the client went away (a write failed) or the task was cancelled: nothing
                        // more can be sent; the generation stops (defer above) and the connection
                        // closes. Not rethrown: a thrown body leaves NIO's writer unfinished.
                    }
                })
        }
        var choices: [CompletionChoice] = [], promptTokens = 0, completionTokens = 0
        for (i, job) in jobs.enumerated() {
            promptTokens += job.ids.count
            let streamer = TextStream(tokenizer: s.translator.tokenizer, eos: s.eos, stops: stops)
            var reason = CompletionFinish.length, text = ""
            loop: for try await ev in job.stream {
                switch ev {
                case .token(let t):
                    completionTokens += 1
                    text += streamer.add(t).delta
                    if streamer.stopped { reason = .stop; break loop }
                case .finished(_, let r):
                    text += streamer.flush()
                    reason = r == .stop ? .stop : .length
                }
            }
            let content: CompletionChoice.Content = chat ? .message(ChatMessage(role: .assistant, content: text)) : .text(text)
            choices.append(CompletionChoice(index: i, content: content, finishReason: reason))
        }
        return json(
            Completion(
                id: id, object: chat ? .chatCompletion : .textCompletion, created: created, model: modelID, choices: choices,
                usage: CompletionUsage(promptTokens: promptTokens, completionTokens: completionTokens)))
    }
}
