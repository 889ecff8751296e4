import Foundation
import Testing

@testable import MixMoE

/// The `mixmoe` executable next to the test bundle.
let mixmoeBinary: URL = Bundle.module.bundleURL.deletingLastPathComponent().appendingPathComponent("mixmoe")

/// A child process's stderr, read on a thread of its own while the child runs. A pipe holds
/// 64 KiB: a child that writes more blocks until someone reads, so waiting for its exit before
/// reading would hang. The reading thread is a plain `Thread`, not a task, so a blocking read
/// never holds one of the cooperative pool's threads (two on this machine).
final class CapturedStderr: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    private let closed = DispatchSemaphore(value: 0)

    init(_ pipe: Pipe) {
        let handle = pipe.fileHandleForReading
        Thread.detachNewThread { [self] in
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }  // EOF: every writer (the child and its children) closed the pipe
                lock.withLock { data.append(chunk) }
            }
            closed.signal()
        }
    }

    /// Everything the child wrote to stderr; waits until the pipe is closed (the child exited).
    var text: String {
        closed.wait()
        closed.signal()  // later reads return at once
        return String(decoding: lock.withLock { data }, as: UTF8.self)
    }
}

@discardableResult
func runMixmoe(_ args: [String], wait: Bool = true) throws -> (process: Process, stderr: CapturedStderr) {
    try runProcess(mixmoeBinary, args, wait: wait)
}

/// Runs `executable` with stdout discarded and stderr captured while it runs; `stdin`, when given,
/// is written to its input; `cwd` is its working directory (default: this process's).
func runProcess(
    _ executable: URL, _ args: [String], wait: Bool, stdin: String? = nil, cwd: URL? = nil
) throws -> (process: Process, stderr: CapturedStderr) {
    let p = Process()
    p.executableURL = executable
    p.arguments = args
    if let cwd { p.currentDirectoryURL = cwd }
    let err = Pipe(), inp = Pipe()
    p.standardError = err
    p.standardOutput = FileHandle.nullDevice
    if stdin != nil { p.standardInput = inp }
    try p.run()
    let captured = CapturedStderr(err)
    if let stdin {
        inp.fileHandleForWriting.write(Data(stdin.utf8))
        try inp.fileHandleForWriting.close()
    }
    if wait { p.waitUntilExit() }
    return (p, captured)
}

/// The support itself: a child writing far more than a pipe holds, waited for before its stderr
/// is read, finishes, and every byte arrives (a closed form: `head -c N`).
@Test func capturedStderrDrainsWhileTheChildRuns() throws {
    let n = 300_000  // > 4 pipe buffers of 64 KiB
    let (p, err) = try runProcess(URL(fileURLWithPath: "/bin/sh"), ["-c", "head -c \(n) /dev/zero | tr '\\0' x >&2"], wait: true)
    #expect(p.terminationStatus == 0)
    let text = err.text
    #expect(text.utf8.count == n && text.allSatisfy { $0 == "x" })
}

/// A MoE configuration under which a freshly upcycled layer computes its dense FFN exactly (the
/// upcycling identity): every expert selected (top-k = n) at weight 1 (gate scale n times the
/// uniform probability 1/n a zeroed router gives; exact for n a power of 2). Call
/// ``zeroRouters(_:)`` on the upcycled model.
func allExpertsAtUnitWeight(_ c: MixMoEConfig) -> MixMoEConfig {
    var c = c
    c.topK = c.expertsPerGroup
    c.gateScale = Double(c.expertsPerGroup)
    return c
}

/// Router weights and biases set to 0: uniform routing probabilities.
func zeroRouters(_ m: DecoderModel) {
    for e in m.store.entries where e.name.hasSuffix("_router.weight") || e.name.hasSuffix("_router.bias") {
        let w = m.store.w(m.store.id(e.name)!)
        for i in 0..<e.count { w[i] = 0 }
    }
}
