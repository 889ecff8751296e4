import Foundation
import Testing

@testable import MixMoE

/// The server's continuous-batching engine against independent truths: transformers' `generate`
/// for greedy results (whatever else is in flight), `Generator.beamSearch` one prompt at a time
/// for beams, the softmax closed form for sampling.
struct ServingEngineTests {
    struct Fixture: Decodable { let prompts: [[Int32]]; let max_new_tokens: Int; let outputs: [[Int32]] }

    func engine(_ fixture: String, rows: Int, maxQueue: Int = 64, context: Int? = nil) throws -> ServingEngine {
        let g = Generator(model: try DecoderModel.load(directory: modelFixture(fixture)), stopTokens: [])
        let e = ServingEngine(generator: g, rows: rows, maxQueue: maxQueue, context: context)
        e.start()
        return e
    }

    /// Collects a generation's events: the streamed tokens and the final result.
    func collect(_ s: Generation) async throws -> (streamed: [Int32], tokens: [Int32], reason: FinishReason?) {
        var streamed: [Int32] = [], tokens: [Int32] = [], reason: FinishReason? = nil
        for try await ev in s {
            switch ev {
            case .token(let t): streamed.append(t)
            case .finished(let ts, let r): tokens = ts; reason = r
            }
        }
        return (streamed, tokens, reason)
    }

    /// Waits (up to 5 s) until the engine holds no generation.
    func idle(_ e: ServingEngine) async -> Bool {
        for _ in 0..<500 {
            if e.load == (0, 0) { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return false
    }

    /// Every prompt submitted at once (four times over, so rows are reused as generations end),
    /// fewer rows than generations: each result is transformers' greedy output, streamed token by
    /// token, ending for "length".
    @Test(arguments: [1, 3, 16])
    func greedyMatchesTransformersWhateverIsInFlight(rows: Int) async throws {
        let fx = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: modelFixture("llama_tied_rope3").appendingPathComponent("generate.json")))
        let e = try engine("llama_tied_rope3", rows: rows)
        defer { e.shutdown() }
        let cases = (0..<4).flatMap { _ in Array(zip(fx.prompts, fx.outputs)) }
        let streams = try cases.map { p, _ in try e.submit(GenerationRequest(prompt: p, maxNewTokens: fx.max_new_tokens, stopTokens: [])) }
        for ((p, want), s) in zip(cases, streams) {
            let r = try await collect(s)
            #expect(r.tokens == want, "prompt \(p)")
            #expect(r.streamed == want && r.reason == .length, "prompt \(p)")
        }
        #expect(await idle(e))
        #expect(e.counters.generatedTokens == cases.reduce(0) { $0 + $1.1.count })
    }

    /// Beam searches (3 beams) and greedy generations mixed in one engine: each beam result is
    /// `Generator.beamSearch`'s for that prompt alone, on a second copy of the model.
    @Test func beamsMixedWithGreedyEqualOneByOne() async throws {
        let prompts: [[Int32]] = [[5, 17, 42], [1, 2, 3, 4, 5, 6, 7], [90, 12, 33, 8, 61], [44]]
        let reference = Generator(model: try DecoderModel.load(directory: modelFixture("llama_tied_rope3")), stopTokens: [7, 13])
        let e = try engine("llama_tied_rope3", rows: 5)
        defer { e.shutdown() }
        var streams: [(prompt: [Int32], beams: Int, s: Generation)] = []
        for p in prompts {
            for beams in [3, 1] {
                streams.append((p, beams, try e.submit(GenerationRequest(prompt: p, maxNewTokens: 10, stopTokens: [7, 13], beams: beams))))
            }
        }
        for (p, beams, s) in streams {
            let want = beams == 1 ? try reference.greedy([p], maxNew: [10])[0] : try reference.beamSearch(p, maxNew: 10, beams: beams).tokens
            let r = try await collect(s)
            #expect(r.tokens == want, "prompt \(p), beams \(beams)")
            #expect(r.reason == ([7, 13].contains(want.last!) ? .stop : .length))
        }
    }

    /// Sampling draws token j with probability softmax(logits / T)_j (closed form), within 4
    /// standard errors over 100,000 draws.
    @Test(arguments: [0.5, 1.0, 2.0])
    func samplingFollowsTheSoftmax(temperature: Double) {
        let logits: [Float] = [1.0, 2.5, -0.3, 2.2, 0.0]
        var rng = SplitMix64(seed: 11)
        var counts = [Int](repeating: 0, count: logits.count)
        let n = 100_000
        logits.withUnsafeBufferPointer { row in
            for _ in 0..<n { counts[Int(ServingEngine.sample(row.baseAddress!, logits.count, temperature, &rng))] += 1 }
        }
        let w = logits.map { exp(Double($0) / temperature) }, z = w.reduce(0, +)
        for j in logits.indices {
            let p = w[j] / z, f = Double(counts[j]) / Double(n)
            #expect(abs(f - p) < 4 * (p * (1 - p) / Double(n)).squareRoot() + 1e-9, "token \(j): frequency \(f), probability \(p)")
        }
    }

    /// A generation cancelled after its first token (a client that went away) frees its row:
    /// its events end, the next request, waiting for the only row, finishes, and far fewer tokens
    /// were generated than the cancelled request asked for.
    ///
    /// The cancelled request asks for 19,000 tokens so that it cannot end by itself while this
    /// test waits for a cooperative thread (other tests may hold them for minutes).
    @Test(.timeLimit(.minutes(10))) func cancelledGenerationFreesItsRow() async throws {
        let e = try engine("llama_tied_rope3", rows: 1, context: 20000)
        defer { e.shutdown() }
        let long = try e.submit(GenerationRequest(prompt: [5, 17, 42], maxNewTokens: 19000, stopTokens: []))
        var it = long.makeAsyncIterator()
        _ = try await it.next()
        long.cancel()
        var rest = 0
        while let ev = try await it.next() {
            if case .finished = ev { Issue.record("a cancelled generation finished") }
            rest += 1
        }
        #expect(rest < 19000)
        let short = try await collect(try e.submit(GenerationRequest(prompt: [44], maxNewTokens: 3, stopTokens: [])))
        #expect(short.tokens.count == 3)
        #expect(e.counters.generatedTokens < 19000)
    }

    /// Requests that can never run, or that find the queue full, are refused at once.
    @Test func refusals() async throws {
        let e = try engine("llama_tied_rope3", rows: 2, maxQueue: 0, context: 16)
        defer { e.shutdown() }
        #expect(throws: EngineError.promptTooLong(tokens: 16, context: 16)) {
            try e.submit(GenerationRequest(prompt: Array(repeating: 1, count: 16), maxNewTokens: 1, stopTokens: []))
        }
        #expect(throws: EngineError.tooManyBeams(beams: 3, rows: 2)) {
            try e.submit(GenerationRequest(prompt: [1], maxNewTokens: 1, stopTokens: [], beams: 3))
        }
        // the context caps the generation: 4 prompt tokens leave 12
        let r = try await collect(try e.submit(GenerationRequest(prompt: [1, 2, 3, 4], maxNewTokens: 100, stopTokens: [])))
        #expect(r.tokens.count == 12 && r.reason == .length)
    }
}
