import Foundation
import Hummingbird
import MixMoE
import MixMoEServer
import Testing

/// The package root (this file is Tests/MixMoEServerTests/ServerTests.swift).
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
/// The shipped tokenizer (the real one: prompts, UTF-8 and stop tokens as users see them).
let tokenizer = try! BPETokenizer.load(root.appendingPathComponent("models/base/tokenizer.json"))

/// A tiny random model with the shipped tokenizer's vocabulary and special tokens (fast in debug
/// builds). The same seed gives the same weights, so a second copy is an offline reference.
func tinyModel(context: Int = 128) throws -> DecoderModel {
    let base = try ModelConfig.load(root.appendingPathComponent("models/base/config.json"))
    let c = ModelConfig(
        vocabSize: base.vocabSize, hiddenSize: 32, intermediateSize: 64, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2,
        maxPositionEmbeddings: context, bosTokenId: base.bosTokenId, eosTokenIds: base.eosTokenIds)
    return DecoderModel(config: c, seed: 7)
}

/// Runs `body` against a live server on a loopback port (any free one) serving a tiny model;
/// with `ready` false the model never loads.
func withServer(
    rows: Int = 8, maxQueue: Int = 64, context: Int = 128, ready: Bool = true, _ body: @escaping @Sendable (Int) async throws -> Void
) async throws {
    let state = ServerState()
    let service =
        ready ? TranslationService(model: try tinyModel(context: context), tokenizer: tokenizer, modelID: "tiny", rows: rows, maxQueue: maxQueue) : nil
    if let service { state.ready(service) }
    // the application on a free loopback port; cancelling its task shuts it down
    let (ports, bound) = AsyncStream<Int>.makeStream()
    let app = MixMoEServer.application(state: state, host: "127.0.0.1", port: 0) { bound.yield($0) }
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await app.run() }
        var it = ports.makeAsyncIterator()
        let port = try #require(await it.next())
        try await body(port)
        group.cancelAll()
    }
    service?.engine.shutdown()
}

/// Offline translations of `texts` by `mixmoe translate`'s code path (one at a time) on a second
/// copy of the tiny model.
func offline(_ texts: [String], _ d: Direction, beams: Int = 1) throws -> [String] {
    let t = Translator(model: try tinyModel(), tokenizer: tokenizer)
    t.batchSize = 1
    t.beams = beams
    return try t.translate(texts, d)
}

let sentences = ["Datei konnte nicht geöffnet werden.", "Hallo Welt", "Fehler", "Möchten Sie die Änderungen speichern?"]

/// Limits are generous on purpose: on a 2-core machine Swift's cooperative pool has 2 threads, and
/// long synchronous tests elsewhere in the same test process (MPI ranks, resume) can hold both
/// for about 10 minutes, during which these async tests cannot run a step (seen in a CI run:
/// two tests here timed out at 5 minutes, and pass in under 10 s alone).
@Suite(.serialized, .timeLimit(.minutes(20))) struct ServerTests {
    @Test func healthIs503WhileLoadingThenOK() async throws {
        try await withServer(ready: false) { port in
            let r = try await http(port, "GET", "/health")
            #expect(r.status == 503 && r.json["status"] as? String == "loading" && r.headers["retry-after"] != nil)
            let t = try await http(port, "POST", "/v1/translate", jsonText(["source_lang": "de", "target_lang": "en", "text": "Hallo"]))
            #expect(t.status == 503)
        }
        try await withServer { port in
            let r = try await http(port, "GET", "/health")
            #expect(r.status == 200 && r.json["status"] as? String == "ok" && r.json["rows"] as? Int == 8)
        }
    }

    @Test func modelsAndWebPage() async throws {
        try await withServer { port in
            let m = try await http(port, "GET", "/v1/models")
            let data = m.json["data"] as? [[String: Any]]
            #expect(m.status == 200 && m.json["object"] as? String == "list" && data?.first?["id"] as? String == "tiny")
            let page = try await http(port, "GET", "/")
            #expect(page.status == 200 && page.headers["content-type"]?.hasPrefix("text/html") == true)
            for part in ["id=\"source\"", "id=\"translate\"", "id=\"result\"", "/v1/translate", "value=\"de\""] {
                #expect(page.body.contains(part), "page lacks \(part)")
            }
            #expect(!page.body.contains("http://") && !page.body.contains("https://"), "the page loads nothing from elsewhere")
        }
    }

    /// 12 requests in flight at once, one or several texts each, greedy and beam 2, on 8 rows:
    /// every translation equals the offline one.
    @Test func translateEqualsOfflineWhateverElseIsInFlight() async throws {
        let d = Direction("de", "en")
        let greedy = try offline(sentences, d), beam = try offline(sentences, d, beams: 2)
        try await withServer { port in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for k in 0..<12 {
                    group.addTask {
                        let i = k % sentences.count, beams = k % 4 == 3 ? 2 : 1
                        let text: Any = k % 2 == 0 ? sentences[i] : sentences
                        let r = try await http(
                            port, "POST", "/v1/translate", jsonText(["source_lang": "de", "target_lang": "en", "text": text, "beam": beams]))
                        #expect(r.status == 200, "\(r.body)")
                        let got = r.json["translations"] as? [String]
                        let want = beams == 1 ? greedy : beam
                        #expect(got == (k % 2 == 0 ? [want[i]] : want), "request \(k)")
                        let usage = r.json["usage"] as? [String: Int]
                        #expect(
                            (usage?["completion_tokens"] ?? 0) > 0
                                && usage?["total_tokens"] == (usage?["prompt_tokens"] ?? 0) + (usage?["completion_tokens"] ?? 0))
                    }
                }
                try await group.waitForAll()
            }
            // blank texts come back blank (the model would invent a translation of nothing)
            let r = try await http(
                port, "POST", "/v1/translate", jsonText(["source_lang": "de", "target_lang": "en", "text": ["", sentences[0], " \t "]]))
            #expect(r.status == 200, "\(r.body)")
            #expect(r.json["translations"] as? [String] == ["", greedy[0], ""])
        }
    }

    enum BadRequest: String, CaseIterable, CustomTestStringConvertible {
        case malformedJSON, notAnObject, missingText, unknownLanguage, sameLanguage, badBeam, textNotString, overContext
        case missingPrompt, twoChoices, negativeTemperature, streamNotBool, tooManyStops, promptOverContext
        case missingMessages, badRole, moreSegmentsThanTheQueue
        var testDescription: String { rawValue }
        var path: String {
            switch self {
            case .missingPrompt, .twoChoices, .negativeTemperature, .streamNotBool, .tooManyStops, .promptOverContext: "/v1/completions"
            case .missingMessages, .badRole: "/v1/chat/completions"
            default: "/v1/translate"
            }
        }
        var body: String {
            switch self {
            case .malformedJSON: "{\"source_lang\": \"de\","
            case .notAnObject: "[1, 2]"
            case .missingText: jsonText(["source_lang": "de", "target_lang": "en"])
            case .unknownLanguage: jsonText(["source_lang": "xx", "target_lang": "en", "text": "a"])
            case .sameLanguage: jsonText(["source_lang": "de", "target_lang": "de", "text": "a"])
            case .badBeam: jsonText(["source_lang": "de", "target_lang": "en", "text": "a", "beam": 0])
            case .textNotString: jsonText(["source_lang": "de", "target_lang": "en", "text": 5])
            case .overContext: jsonText(["source_lang": "de", "target_lang": "en", "text": String(repeating: "Wort ", count: 200)])
            // the test server queues 64: 65 segments can never be taken at once
            case .moreSegmentsThanTheQueue: jsonText(["source_lang": "de", "target_lang": "en", "text": Array(repeating: "Hallo", count: 65)])
            case .missingPrompt: jsonText(["max_tokens": 4])
            case .twoChoices: jsonText(["prompt": "a", "n": 2])
            case .negativeTemperature: jsonText(["prompt": "a", "temperature": -1])
            case .streamNotBool: jsonText(["prompt": "a", "stream": "yes"])
            case .tooManyStops: jsonText(["prompt": "a", "stop": ["a", "b", "c", "d", "e"]])
            case .promptOverContext: jsonText(["prompt": String(repeating: "Wort ", count: 200)])
            case .missingMessages: jsonText(["max_tokens": 4])
            case .badRole: jsonText(["messages": [["role": "robot", "content": "hi"]]])
            }
        }
        var status: Int { [.overContext, .promptOverContext, .moreSegmentsThanTheQueue].contains(self) ? 413 : 400 }
        /// What the message must name.
        var names: String {
            switch self {
            case .malformedJSON: "not valid JSON"
            case .notAnObject: "JSON object"
            case .missingText: "'text'"
            case .unknownLanguage: "'source_lang'"
            case .sameLanguage: "different"
            case .badBeam: "'beam'"
            case .textNotString: "'text'"
            case .overContext, .promptOverContext: "context"
            case .missingPrompt: "'prompt'"
            case .twoChoices: "'n'"
            case .negativeTemperature: "'temperature'"
            case .streamNotBool: "'stream'"
            case .tooManyStops: "'stop'"
            case .missingMessages: "'messages'"
            case .badRole: "messages[0].role"
            case .moreSegmentsThanTheQueue: "--max-queue"
            }
        }
    }

    /// A GET on a POST route: 405 with `Allow: POST` and a JSON error naming the route, not 404.
    @Test func getOnAPostRouteIs405() async throws {
        try await withServer { port in
            for path in ["/v1/translate", "/v1/completions", "/v1/chat/completions"] {
                let r = try await http(port, "GET", path)
                #expect(r.status == 405 && r.headers["allow"] == "POST", "\(path): \(r.status) \(r.body)")
                #expect(((r.json["error"] as? [String: Any])?["message"] as? String)?.contains(path) == true, "\(r.body)")
            }
            #expect(try await http(port, "GET", "/v1/nothing").status == 404)
        }
    }

    @Test(arguments: BadRequest.allCases)
    func badRequestsGetAJSONError(_ c: BadRequest) async throws {
        try await withServer { port in
            let r = try await http(port, "POST", c.path, c.body)
            #expect(r.status == c.status, "\(r.body)")
            let e = r.json["error"] as? [String: Any]
            #expect((e?["message"] as? String)?.contains(c.names) == true, "\(r.body)")
            #expect(e?["code"] as? Int == c.status)
        }
    }

    /// Completions: greedy text equals the uncached reference decoding (a full forward per token)
    /// of the same prompt, cut at the stop string, which is not included.
    @Test func completionsEqualUncachedGreedy() async throws {
        let prompt = "The file could not be"
        let ids = tokenizer.encode(prompt, addSpecialTokens: true)
        let model = try tinyModel()
        let want = try Generator(model: model, stopTokens: Set(model.config.eosTokenIds.map(Int32.init))).greedyUncached(ids, maxNew: 12)
        let wantText = tokenizer.decode(want)
        try await withServer { port in
            let r = try await http(port, "POST", "/v1/completions", jsonText(["prompt": prompt, "max_tokens": 12]))
            #expect(r.status == 200 && r.json["object"] as? String == "text_completion")
            let choice = (r.json["choices"] as? [[String: Any]])?.first
            #expect(choice?["text"] as? String == wantText)
            #expect(choice?["finish_reason"] as? String == "length")
            #expect((r.json["usage"] as? [String: Int])?["prompt_tokens"] == ids.count)
            // a stop string that occurs in the text: cut before it, finish_reason "stop"
            let mid = String(wantText.dropFirst(wantText.count / 2).prefix(2))
            let s = try await http(port, "POST", "/v1/completions", jsonText(["prompt": prompt, "max_tokens": 12, "stop": [mid]]))
            let sc = (s.json["choices"] as? [[String: Any]])?.first
            let cut = String(wantText[..<wantText.range(of: mid)!.lowerBound])
            #expect(sc?["text"] as? String == cut && sc?["finish_reason"] as? String == "stop", "stop \(mid)")
        }
    }

    /// Streaming: server-sent events whose deltas join to the non-streamed text, a final chunk with
    /// the finish reason, then `data: [DONE]`; chat chunks open with the assistant role.
    @Test(arguments: [false, true])
    func streamingJoinsToTheWholeText(chat: Bool) async throws {
        let path = chat ? "/v1/chat/completions" : "/v1/completions"
        var req: [String: Any] = ["max_tokens": 20]
        if chat { req["messages"] = [["role": "user", "content": "Hallo Welt"]] } else { req["prompt"] = "Hallo Welt" }
        let plain = jsonText(req)
        req["stream"] = true
        let streamed = jsonText(req)
        try await withServer { port in
            let whole = try await http(port, "POST", path, plain)
            #expect(whole.status == 200)
            let choice = (whole.json["choices"] as? [[String: Any]])?.first
            let text = chat ? (choice?["message"] as? [String: Any])?["content"] as? String : choice?["text"] as? String
            let s = try await http(port, "POST", path, streamed)
            #expect(s.status == 200 && s.headers["content-type"] == "text/event-stream")
            let events = s.body.components(separatedBy: "\n\n").filter { !$0.isEmpty }
            #expect(events.allSatisfy { $0.hasPrefix("data: ") })
            #expect(events.last == "data: [DONE]")
            var joined = "", reasons: [String] = [], roles: [String] = []
            for e in events.dropLast() {
                let j = (try? JSONSerialization.jsonObject(with: Data(e.dropFirst(6).utf8))) as? [String: Any]
                let c = (j?["choices"] as? [[String: Any]])?.first
                if chat {
                    let delta = c?["delta"] as? [String: Any]
                    joined += delta?["content"] as? String ?? ""
                    if let r = delta?["role"] as? String { roles.append(r) }
                } else {
                    joined += c?["text"] as? String ?? ""
                }
                if let r = c?["finish_reason"] as? String { reasons.append(r) }
            }
            #expect(joined == text)
            #expect(reasons == [choice?["finish_reason"] as? String ?? "?"])
            if chat { #expect(roles == ["assistant"]) }
        }
    }

    /// A streaming client that closes its connection after the first event frees its row, long
    /// before its generation could end; then the next request gets the row. While it holds the
    /// only row (and the queue has no room), another request gets 503 with Retry-After.
    ///
    /// The generation asks for 19,000 tokens so that it cannot end by itself while the test
    /// waits: in `swift test` the handlers share Swift's cooperative threads with every other
    /// test, and a long synchronous test can hold them for minutes.
    @Test(.timeLimit(.minutes(20))) func disconnectFreesTheRowAndAFullQueueGets503() async throws {
        try await withServer(rows: 1, maxQueue: 0, context: 20000) { port in
            let c = try RawConnection(port: port)
            c.send(method: "POST", path: "/v1/completions", body: jsonText(["prompt": "Hallo", "max_tokens": 19000, "stream": true]))
            _ = c.read(until: "data: ")
            let busy = try await http(port, "POST", "/v1/translate", jsonText(["source_lang": "de", "target_lang": "en", "text": "Hallo"]))
            #expect(busy.status == 503 && busy.headers["retry-after"] != nil, "\(busy.body)")
            c.shut()
            var freed = false
            for _ in 0..<20000 {  // the row frees once a write fails, at the engine's next step
                if try await http(port, "GET", "/health").json["active"] as? Int == 0 {
                    freed = true
                    break
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(freed)
            let h = try await http(port, "GET", "/health")
            #expect((h.json["generated_tokens"] as? Int ?? 19000) < 19000)
            let after = try await http(port, "POST", "/v1/translate", jsonText(["source_lang": "de", "target_lang": "en", "text": "Hallo"]))
            #expect(after.status == 200, "\(after.body)")
        }
    }
}

/// `mixmoe serve` as a process: SIGTERM while a request is in flight lets it finish (200), then
/// the server exits 0.
@Suite(.timeLimit(.minutes(20))) struct ServeProcessTests {  // 20 minutes: see ServerTests
    /// A port another process holds: a message naming the address and a hint, exit 1.
    @Test func portInUseIsAClearError() throws {
        let (fd, port) = occupiedPort()
        defer { close(fd) }
        let p = Process()
        p.executableURL = root.appendingPathComponent(".build/debug/mixmoe")
        p.arguments = ["serve", "--model", root.appendingPathComponent("models/base").path, "--port", "\(port)", "--threads", "1"]
        let err = Pipe()
        p.standardError = err
        try p.run()
        let log = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 1)
        #expect(log.contains("could not listen on 127.0.0.1:\(port)") && log.contains("--port"), "\(log)")
    }

    @Test func sigtermFinishesInFlightRequestsThenExits() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mixmoe-serve-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try tinyModel(context: 4096).save(directory: dir)
        try HFDirectory.writeTokenizer(Data(contentsOf: root.appendingPathComponent("models/base/tokenizer.json")), to: dir)
        let p = Process()
        p.executableURL = root.appendingPathComponent(".build/debug/mixmoe")
        p.arguments = ["serve", "--model", dir.path, "--port", "0", "--threads", "1", "--max-batch", "2"]
        let err = Pipe()
        p.standardError = err
        try p.run()
        // the port is in the "listening on" line
        var log = ""
        while !log.contains("listening on") {
            let d = err.fileHandleForReading.availableData
            if d.isEmpty { break }
            log += String(decoding: d, as: UTF8.self)
        }
        let port = try #require(log.firstRange(of: /127\.0\.0\.1:(\d+)/).flatMap { Int(log[$0].split(separator: ":")[1]) }, "\(log)")
        for _ in 0..<500 {
            if try await http(port, "GET", "/health").status == 200 { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        async let inFlight = http(port, "POST", "/v1/completions", jsonText(["prompt": "Hallo", "max_tokens": 300]))
        for _ in 0..<500 {  // until the engine holds it
            if try await http(port, "GET", "/health").json["active"] as? Int == 1 { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        p.terminate()  // SIGTERM
        let r = try await inFlight
        #expect(r.status == 200, "\(r.body)")
        #expect(((r.json["usage"] as? [String: Int])?["completion_tokens"] ?? 0) > 0)
        p.waitUntilExit()
        log += String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(p.terminationReason == .exit && p.terminationStatus == 0, "\(log)")
        #expect(log.contains("stopped"))
    }
}
