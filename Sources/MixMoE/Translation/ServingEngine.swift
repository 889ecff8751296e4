import Foundation
import Synchronization

/// Why a generation ended.
public enum FinishReason: String, Sendable, Codable {
    /// A stop token (EOS; for translations also a newline), or the caller's stop condition.
    case stop
    /// The token limit (the request's, or the model's context).
    case length
}

/// One generation for ``ServingEngine``.
public struct GenerationRequest: Sendable {
    /// Prompt ids (BOS included where the model wants one); not empty.
    public var prompt: [Int32]
    /// Tokens to generate at most (cut further to the model's context).
    public var maxNewTokens: Int
    /// Tokens that end the generation (kept as its last token).
    public var stopTokens: Set<Int32>
    /// 1: greedy or sampled, token by token; more: beam search (CTranslate2's rule, as
    /// `Generator.beamSearch`), one result at the end.
    public var beams: Int
    public var lengthPenalty: Double
    /// 0: greedy (argmax); above 0: sampling from softmax(logits / temperature) (beams 1 only).
    public var temperature: Double
    /// Seed of the sampler (temperature above 0).
    public var seed: UInt64

    public init(
        prompt: [Int32], maxNewTokens: Int, stopTokens: Set<Int32>, beams: Int = 1, lengthPenalty: Double = 1, temperature: Double = 0,
        seed: UInt64 = 0
    ) {
        self.prompt = prompt; self.maxNewTokens = maxNewTokens; self.stopTokens = stopTokens
        self.beams = beams; self.lengthPenalty = lengthPenalty; self.temperature = temperature; self.seed = seed
    }
}

/// What a generation reports: each token as it is chosen (beams 1), then the result.
public enum GenerationEvent: Sendable, Equatable {
    case token(Int32)
    /// The generated ids (ending with the stop token, if one ended it) and why it ended.
    case finished(tokens: [Int32], reason: FinishReason)
}

/// A submitted generation: its events, in order, and a way to stop it.
public struct Generation: AsyncSequence, Sendable {
    public typealias Element = GenerationEvent
    public let events: AsyncThrowingStream<GenerationEvent, any Error>
    let job: ServingEngine.Job

    public func makeAsyncIterator() -> AsyncThrowingStream<GenerationEvent, any Error>.Iterator { events.makeAsyncIterator() }

    /// Stops the generation (a client that went away, a stop string found): its rows free at the
    /// engine's next step and its events end. No effect once it has finished.
    public func cancel() { job.cancelled.store(true, ordering: .relaxed) }
}

/// Why the engine refused a request.
public enum EngineError: LocalizedError, Equatable {
    case queueFull(waiting: Int)
    case promptTooLong(tokens: Int, context: Int)
    case tooManyBeams(beams: Int, rows: Int)
    case invalid(String)
    case stopped

    public var errorDescription: String? {
        switch self {
        case .queueFull(let n): "the queue is full (\(n) requests waiting); retry later"
        case .promptTooLong(let t, let c): "the prompt has \(t) tokens; the model's context is \(c) tokens, and one must be left to generate"
        case .tooManyBeams(let b, let r): "beam \(b) needs \(b) cache rows; the server has \(r) (--max-batch)"
        case .invalid(let s): s
        case .stopped: "the server is shutting down"
        }
    }
}

/// Continuous batching for a server: one loop on its own thread runs every active generation of
/// every request through the model together, one decoding step at a time, and admits waiting
/// prompts (first come, first served) as cache rows free up.
///
/// It is `Generator`'s algorithm with an open-ended queue: the KV cache has `rows` rows of the
/// model's whole context; a greedy or sampled generation holds one row, a beam search `beams`
/// rows. Each step either prefills the prompts just admitted (packed, no padding) or advances all
/// live generations by one token (one GEMM per projection over all their rows). A row attends to
/// its own cache row only, so a greedy result does not depend on what else is in the batch; it
/// equals `Translator.translate`'s (up to float summation order in the GEMMs, as there).
///
/// ``submit(_:)`` returns a ``Generation``: its events, and `cancel()` (a client that went away;
/// dropping the events' stream does the same), after which its rows free at the next step. ``shutdown()`` refuses new
/// requests, lets the admitted and queued ones finish, and stops the thread.
public final class ServingEngine: @unchecked Sendable {
    public let generator: Generator
    /// Cache rows: generations in flight (beam search takes one per beam).
    public let rows: Int
    /// Requests that may wait for a row; beyond that, ``submit(_:)`` throws `queueFull`.
    public let maxQueue: Int
    /// Cache positions per row: the model's context.
    public let context: Int

    private let cache: [LayerCache]
    private let cond = NSCondition()
    // guarded by `cond`
    private var waiting: [Job] = []
    private var activeCount = 0
    private var stopping = false
    private var finishedThread = false
    private var tally = EngineCounters()

    /// Load figures for `/health` and reports.
    public struct EngineCounters: Sendable, Codable {
        public var requests = 0, generatedTokens = 0, steps = 0, stepRows = 0, prefills = 0, prefillTokens = 0
        public var prefillSeconds = 0.0, stepSeconds = 0.0
    }

    final class Job: @unchecked Sendable {
        let request: GenerationRequest
        let continuation: AsyncThrowingStream<GenerationEvent, any Error>.Continuation
        let cancelled = Atomic<Bool>(false)
        // the engine thread's alone
        var slots: [Int] = []
        var tokens: [Int32] = []
        var position: Int32 = 0
        var rng: SplitMix64
        var beam: BeamGroup?
        var maxNew: Int

        init(_ r: GenerationRequest, _ c: AsyncThrowingStream<GenerationEvent, any Error>.Continuation, maxNew: Int) {
            request = r; continuation = c; self.maxNew = maxNew
            rng = SplitMix64(seed: r.seed)
        }
    }

    /// An engine over `generator`'s model with `rows` cache rows of `context` positions (default:
    /// the model's `max_position_embeddings`). Call ``start()`` before submitting.
    public init(generator: Generator, rows: Int, maxQueue: Int, context: Int? = nil) {
        precondition(rows >= 1 && maxQueue >= 0, "at least one row")
        self.generator = generator
        self.rows = rows
        self.maxQueue = maxQueue
        self.context = context ?? generator.model.config.maxPositionEmbeddings
        cache = generator.model.makeCache(batch: rows, maxLen: self.context)
    }

    /// Starts the decoding thread.
    public func start() {
        let t = Thread { [self] in loop() }
        t.name = "mixmoe-engine"
        t.stackSize = 8 << 20
        t.start()
    }

    /// Generations admitted (holding rows) and waiting.
    public var load: (active: Int, waiting: Int) {
        cond.lock(); defer { cond.unlock() }
        return (activeCount, waiting.count)
    }

    /// Requests, generated tokens, prefills and decoding steps so far.
    public var counters: EngineCounters {
        cond.lock(); defer { cond.unlock() }
        return tally
    }

    /// Queues a generation. Throws at once for a request that can never run (prompt over the
    /// context, more beams than rows), when the queue is full, or after ``shutdown()``.
    public func submit(_ r: GenerationRequest) throws -> Generation {
        guard !r.prompt.isEmpty else { throw EngineError.invalid("empty prompt") }
        guard r.prompt.count < context else { throw EngineError.promptTooLong(tokens: r.prompt.count, context: context) }
        guard r.beams >= 1 else { throw EngineError.invalid("beams must be at least 1") }
        guard r.beams <= rows else { throw EngineError.tooManyBeams(beams: r.beams, rows: rows) }
        guard r.temperature >= 0, r.temperature.isFinite else { throw EngineError.invalid("temperature must be a number >= 0") }
        let (stream, continuation) = AsyncThrowingStream<GenerationEvent, any Error>.makeStream()
        let job = Job(r, continuation, maxNew: min(max(r.maxNewTokens, 0), context - r.prompt.count))
        continuation.onTermination = { [weak job] reason in
            if case .cancelled = reason { job?.cancelled.store(true, ordering: .relaxed) }
        }
        cond.lock()
        defer { cond.unlock() }
        guard !stopping else { throw EngineError.stopped }
        guard waiting.count < maxQueue || activeCount == 0 && waiting.isEmpty else { throw EngineError.queueFull(waiting: waiting.count) }
        waiting.append(job)
        tally.requests += 1
        cond.signal()
        return Generation(events: stream, job: job)
    }

    /// Refuses new requests, finishes every admitted and queued one, then stops the thread
    /// (returns when it has).
    public func shutdown() {
        cond.lock()
        stopping = true
        cond.broadcast()
        while !finishedThread { cond.wait() }
        cond.unlock()
    }

    // MARK: the decoding loop (engine thread)

    private func loop() {
        var free = Array((0..<rows).reversed())
        var live: [Job] = []
        let V = generator.model.config.vocabSize
        func release(_ j: Job) {
            free.append(contentsOf: j.slots)
            j.slots = []
        }
        func finish(_ j: Job, _ reason: FinishReason) {
            release(j)
            j.continuation.yield(.finished(tokens: j.tokens, reason: reason))
            j.continuation.finish()
        }
        while true {
            cond.lock()
            activeCount = live.count
            while waiting.isEmpty && live.isEmpty && !stopping { cond.wait() }
            if stopping && waiting.isEmpty && live.isEmpty {
                finishedThread = true
                cond.broadcast()
                cond.unlock()
                return
            }
            // admit in arrival order while rows last (a beam search waits for all its rows)
            var admit: [Job] = []
            var avail = free.count
            while let j = waiting.first, j.request.beams <= avail {
                avail -= j.request.beams
                admit.append(waiting.removeFirst())
            }
            activeCount = live.count + admit.count
            cond.unlock()

            // generations whose client went away free their rows now
            live.removeAll { j in
                guard j.cancelled.load(ordering: .relaxed) else { return false }
                release(j); j.continuation.finish(); return true
            }
            admit.removeAll { j in
                guard j.cancelled.load(ordering: .relaxed) || j.maxNew == 0 else { return false }
                if j.maxNew == 0 { finish(j, .length) } else { j.continuation.finish() }
                return true
            }
            do {
                var rowsOf: [(job: Job, first: Int)] = []
                if !admit.isEmpty {
                    for j in admit {
                        j.slots = (0..<j.request.beams).map { _ in free.removeLast() }
                        j.position = Int32(j.request.prompt.count)
                        if j.request.beams > 1 {
                            j.beam = BeamGroup(prompt: 0, promptLength: j.request.prompt.count, maxNew: j.maxNew, slots: j.slots)
                        }
                    }
                    try generator.prefillRows(admit.map(\.request.prompt), slots: admit.map { $0.slots[0] }, cache: cache)
                    rowsOf = admit.enumerated().map { ($1, $0) }
                    cond.lock()
                    tally.prefills += 1; tally.prefillTokens = generator.stats.prefillTokens; tally.prefillSeconds = generator.stats.prefillSeconds
                    cond.unlock()
                } else {
                    guard !live.isEmpty else { continue }
                    var ids: [Int32] = [], pos: [Int32] = [], slots: [Int32] = []
                    for j in live {
                        rowsOf.append((j, ids.count))
                        if let g = j.beam {
                            for b in g.beams {
                                ids.append(b.tokens.last!); pos.append(Int32(g.promptLength + g.step - 1)); slots.append(Int32(b.slot))
                            }
                        } else {
                            ids.append(j.tokens.last!); pos.append(j.position); slots.append(Int32(j.slots[0]))
                        }
                    }
                    try generator.stepRows(ids, positions: pos, slots: slots, cache: cache)
                    cond.lock()
                    tally.steps += 1; tally.stepRows += ids.count; tally.stepSeconds = generator.stats.stepSeconds
                    cond.unlock()
                    live = []
                }
                var produced = 0
                for (j, first) in rowsOf {
                    let logits = generator.model.logits.ptr + first * V
                    if let g = j.beam {
                        let done = g.advance(
                            logits: logits, vocab: V, beams: j.request.beams, stopTokens: j.request.stopTokens,
                            earlyExit: j.request.lengthPenalty == 0
                        ) { src, dst, len in
                            for c in cache { c.copy(row: src, to: dst, len: len) }
                        }
                        if done {
                            let best = g.best(lengthPenalty: j.request.lengthPenalty)
                            j.tokens = best.tokens
                            produced += best.tokens.count
                            finish(j, j.request.stopTokens.contains(best.tokens.last ?? -1) ? .stop : .length)
                        } else {
                            live.append(j)
                        }
                        continue
                    }
                    let t = j.request.temperature == 0 ? generator.argmax(logits, V) : Self.sample(logits, V, j.request.temperature, &j.rng)
                    j.tokens.append(t)
                    produced += 1
                    j.continuation.yield(.token(t))
                    if j.request.stopTokens.contains(t) {
                        finish(j, .stop)
                    } else if j.tokens.count >= j.maxNew {
                        finish(j, .length)
                    } else {
                        if j.tokens.count > 1 { j.position += 1 }
                        live.append(j)
                    }
                }
                cond.lock(); tally.generatedTokens += produced; cond.unlock()
            } catch {
                // cannot happen for validated requests; fail the generations involved (the
                // prefill's, or the step's), keep serving
                for j in admit.isEmpty ? live : admit {
                    release(j)
                    j.continuation.finish(throwing: error)
                }
                if admit.isEmpty { live = [] }
            }
        }
    }

    /// A token drawn from softmax(logits / temperature) (inverse CDF on one uniform draw).
    static func sample(_ row: UnsafePointer<Float>, _ V: Int, _ temperature: Double, _ rng: inout SplitMix64) -> Int32 {
        var m = row[0]
        for j in 1..<V where row[j] > m { m = row[j] }
        var w = [Double](repeating: 0, count: V), sum = 0.0
        for j in 0..<V {
            w[j] = exp(Double(row[j] - m) / temperature)
            sum += w[j]
        }
        var u = rng.nextUnit() * sum
        for j in 0..<V {
            u -= w[j]
            if u <= 0 { return Int32(j) }
        }
        return Int32(V - 1)
    }
}
