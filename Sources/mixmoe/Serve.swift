import ArgumentParser
import Foundation
import MixMoE
import MixMoECommandLine

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `mixmoe serve ARGS` runs `mixmoe-serve ARGS`, the HTTP server, which is an executable of its
/// own: linking Hummingbird and SwiftNIO into `mixmoe` added minutes to every clean build, the
/// demo's included. The server replaces this process (exec), so its pid, signals (SIGTERM drains
/// the requests in flight) and exit status are the server's.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a model over HTTP (runs mixmoe-serve, built beside mixmoe; `mixmoe serve --help` lists its options).",
        discussion: "Build the server with `swift build -c release --product mixmoe-serve`. Endpoints and fields: docs/SERVER.md.")

    @Argument(parsing: .captureForPassthrough, help: "mixmoe-serve's options (--model DIR, --port, --host, --max-batch, ...).")
    var arguments: [String] = []

    func run() async throws { try await reportingErrors { try launch() } }

    private func launch() throws {
        let here =
            Bundle.main.executableURL?.resolvingSymlinksInPath().deletingLastPathComponent()
            ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let server = here.appendingPathComponent("mixmoe-serve")
        guard FileManager.default.isExecutableFile(atPath: server.path) else {
            throw ServeLaunchError.notBuilt(expected: server.path, configuration: here.lastPathComponent)
        }
        let argv = [server.path] + arguments
        var cArgs = argv.map { strdup($0) } + [nil]
        execv(server.path, &cArgs)
        // execv returns only on failure
        throw ServeLaunchError.cannotExec(path: server.path, errno: errno)
    }
}

enum ServeLaunchError: LocalizedError {
    case notBuilt(expected: String, configuration: String)
    case cannotExec(path: String, errno: Int32)

    var errorDescription: String? {
        switch self {
        case .notBuilt(let path, let configuration):
            let flag = configuration == "release" ? " -c release" : ""
            return "the server executable \(path) is not built. "
                + "Build it with `swift build\(flag) --product mixmoe-serve` (or run `swift run\(flag) mixmoe-serve --model DIR`)."
        case .cannotExec(let path, let e):
            return "cannot run \(path): \(String(cString: strerror(e)))"
        }
    }
}
