import Foundation
import Testing

@testable import MixMoE

/// The package root (this file is Tests/MixMoETests/ReleaseBuildTests.swift).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The `mixmoe` binary as users build it (`swift build -c release`, default flags), built for
/// these tests in its own scratch folder: `swift test` holds the lock on `.build`, and the
/// debug binary would not show what the release build does with bad input.
let releaseBinary: Result<URL, Error> = Result {
    let scratch = packageRoot.appendingPathComponent(".build/release-tests")
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["swift", "build", "-c", "release", "--product", "mixmoe", "--package-path", packageRoot.path, "--scratch-path", scratch.path]
    var env = ProcessInfo.processInfo.environment
    env["MIXMOE_TARGET_CPU"] = nil  // the default build
    p.environment = env
    let out = Pipe()
    p.standardOutput = out; p.standardError = out
    try p.run()
    let log = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else {
        throw DataError.malformed(file: "swift build -c release", line: 0, expected: "a successful build:\n" + String(decoding: log, as: UTF8.self))
    }
    return scratch.appendingPathComponent("release/mixmoe")
}

/// Runs the release binary with `stdin` as its input; returns the exit status, stderr and stdout
/// (collected in a file, so a large output cannot block the process on a full pipe).
func runRelease(_ args: [String], stdin: String = "") throws -> (status: Int32, stderr: String, stdout: String) {
    let p = Process()
    p.executableURL = try releaseBinary.get()
    p.arguments = args
    let outURL = tempDir("release-stdout").appendingPathComponent("stdout")
    defer { try? FileManager.default.removeItem(at: outURL.deletingLastPathComponent()) }
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    let outFile = try FileHandle(forWritingTo: outURL)
    let inp = Pipe(), err = Pipe()
    p.standardInput = inp; p.standardError = err; p.standardOutput = outFile
    try p.run()
    inp.fileHandleForWriting.write(Data(stdin.utf8))
    try inp.fileHandleForWriting.close()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    try outFile.close()
    return (p.terminationStatus, String(decoding: e, as: UTF8.self), try String(contentsOf: outURL, encoding: .utf8))
}

/// Bad input to the release build: a clear error naming what is wrong and exit 1, never a crash
/// (a trap would exit by signal with "Fatal error" on stderr).
@Suite(.serialized) struct ReleaseBuildInputTests {
    enum Case: String, CaseIterable, CustomTestStringConvertible {
        case tokenOutOfRange, promptLongerThanContext, misShapedTensor, malformedPromptIds, generatedTokenOutOfRange
        var testDescription: String { rawValue }
    }

    @Test(arguments: Case.allCases)
    func badInputGivesAClearError(_ c: Case) throws {
        let dir = tempDir("release-\(c.rawValue)")
        let args: [String], stdin: String, want: [String]
        switch c {
        case .tokenOutOfRange:  // the fixture's vocabulary has 97 tokens
            args = ["forward", "--model", modelFixture("llama_untied").path, "--ids", "5,99999"]
            stdin = ""
            want = ["token id 99999 at position 1 is outside the vocabulary (0..<97)"]
        case .promptLongerThanContext:  // a model with a 64-position context and a real tokenizer
            let cfg =
                #"{"model_type": "llama", "vocab_size": 3000, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64, "tie_word_embeddings": true, "eos_token_id": 1}"#
            try Data(cfg.utf8).write(to: dir.appendingPathComponent("config.json"))
            let model = dir.appendingPathComponent("model")
            #expect(try runRelease(["init", "--config", dir.appendingPathComponent("config.json").path, "--out", model.path]).status == 0)
            try FileManager.default.copyItem(
                at: fixtures.appendingPathComponent("tokenizers/llama3.json"),
                to: model.appendingPathComponent("tokenizer.json"))
            args = ["translate", "--model", model.path, "--from", "de", "--to", "en"]
            stdin = "Guten Morgen\n" + String(repeating: "ein sehr langer Satz ", count: 60) + "\n"
            want = ["segment 2", "max_position_embeddings 64", "holds at most 64"]
        case .misShapedTensor:  // config.json says d_ff 48, the tensors are [64, 32]
            let model = dir.appendingPathComponent("model")
            try FileManager.default.copyItem(at: modelFixture("llama_untied"), to: model)
            let cfgURL = model.appendingPathComponent("config.json")
            let cfg = try String(contentsOf: cfgURL, encoding: .utf8).replacingOccurrences(of: "\"intermediate_size\": 64", with: "\"intermediate_size\": 48")
            try Data(cfg.utf8).write(to: cfgURL)
            args = ["forward", "--model", model.path, "--ids", "1,2"]
            stdin = ""
            want = ["model.safetensors", "mlp.", "has shape", "48]"]
        case .malformedPromptIds:  // generate reads one JSON array of ids per line
            args = ["generate", "--model", modelFixture("llama_untied").path]
            stdin = "[1, 2, 3]\n1 2 3\n"
            want = ["stdin:2: expected a non-empty JSON array of token ids"]
        case .generatedTokenOutOfRange:
            args = ["generate", "--model", modelFixture("llama_untied").path]
            stdin = "[1, 200]\n"
            want = ["token id 200 at position 1 is outside the vocabulary (0..<97)"]
        }
        let r = try runRelease(args, stdin: stdin)
        #expect(r.status == 1, "\(c): exit \(r.status), stderr: \(r.stderr)")
        #expect(r.stderr.hasPrefix("mixmoe: error: "), "\(c): \(r.stderr)")
        #expect(!r.stderr.contains("Fatal error"), "\(c): \(r.stderr)")
        for w in want { #expect(r.stderr.contains(w), "\(c): '\(w)' not in: \(r.stderr)") }
    }
}
