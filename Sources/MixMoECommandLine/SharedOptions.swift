import ArgumentParser
import Foundation
import MixMoE

// What every front end (`mixmoe`, `mixmoe-serve`) shares: the option groups whose flags mean the
// same thing everywhere, and one error policy. A module of its own so the HTTP server can be an
// executable of its own: `mixmoe` does not link Hummingbird (minutes of clean build).

extension RouterFeatures: ExpressibleByArgument {}
extension GroupCombine: ExpressibleByArgument {}
extension UpcycleMode: ExpressibleByArgument {}
extension Method: ExpressibleByArgument {}
extension ExperimentName: ExpressibleByArgument {}
extension MetricName: ExpressibleByArgument {}
extension SacreTokenizer: ExpressibleByArgument {}
extension SplitPattern: ExpressibleByArgument {}
extension FreezePlan: ExpressibleByArgument {}
extension DType: ExpressibleByArgument {}
extension PairDirections: ExpressibleByArgument {}
extension Placement: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

/// Options every computing command shares.
public struct ComputeOptions: ParsableArguments, Sendable {
    public init() {}
    @Option(help: "Threads for all numeric work (ours and OpenBLAS's). Results are deterministic for a given seed and thread count.")
    public var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    /// Sets the thread count, then runs a command body with the CLI's error reporting. Under
    /// `mpirun`/`srun`, a `distributed` command joins the MPI job (data-parallel training); any
    /// other command refuses to run in more than one process.
    public func run(distributed: Bool = false, _ body: () async throws -> Void) async throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        Parallel.setThreads(threads)
        // MIXMOE_PROFILE=1: time the kernels (GEMMs, attention, norms, ...) and print the totals on stderr
        let profile = ProcessInfo.processInfo.environment["MIXMOE_PROFILE"] == "1"
        Profile.enabled = profile
        defer { if profile { printErr(Profile.report) } }
        try await reportingErrors {
            if Distributed.launchedByMPI {
                let world = try Distributed.start()
                if !distributed && world.size > 1 {
                    throw DistributedError.unsupported(command: CommandLine.arguments.dropFirst().prefix(2).joined(separator: " "))
                }
            }
            try await body()
        }
        Distributed.finish()
    }
}

/// The model directory a command reads when `--model` is not given: none for most commands (the
/// flag is required), the shipped translator for `translate` and `serve`.
public protocol ModelDefault: Sendable {
    static var path: String? { get }
}
/// `--model` is required.
public enum NoDefaultModel: ModelDefault { public static let path: String? = nil }
/// `--model` defaults to `models/mt`, the shipped translator (relative to the working directory).
public enum ShippedTranslator: ModelDefault { public static let path: String? = "models/mt" }

/// The model a command reads: `--model DIR` (a Hugging Face model directory) and, where a
/// tokenizer is needed, `--tokenizer` (default: the directory's tokenizer.json). One group for
/// every command, so the flags mean the same everywhere; only the default differs (`Default`).
public struct ModelChoice<Default: ModelDefault>: ParsableArguments, Sendable {
    public init() {}
    @Option(
        name: .customLong("model"),
        help: ArgumentHelp(
            "Model directory (config.json, model.safetensors; tokenizer.json where text is involved)"
                + (Default.path.map { "; default: \($0), the shipped translator." } ?? "."))
    )
    var modelPath: String?
    @Option(help: "tokenizer.json (default: the model directory's).") public var tokenizer: String?
    @Option(
        help:
            "What weight matrices are held in: f32, or bf16 (half the memory; compute stays fp32). Training holds only the frozen matrices in bf16; upcycle writes bf16 files."
    )
    public var dtype: DType = .f32

    public func validate() throws {
        guard modelPath != nil || Default.path != nil else { throw ValidationError("Missing expected argument '--model <model>'") }
        if modelPath == nil, let d = Default.path, !FileManager.default.fileExists(atPath: d) {
            throw ValidationError(
                "no --model given, and the default, \(d) (the shipped translator), is not in \(FileManager.default.currentDirectoryPath): "
                    + "run from the repository's root or pass --model DIR")
        }
    }

    /// The directory given, or the command's default.
    public var model: String { modelPath ?? Default.path! }
    public var url: URL { URL(fileURLWithPath: model) }
    public func load() throws -> DecoderModel { try DecoderModel.load(directory: url, dtype: dtype) }
    public func loadWithTokenizer() throws -> (DecoderModel, BPETokenizer) {
        try DecoderModel.loadWithTokenizer(directory: url, tokenizer: tokenizer, dtype: dtype)
    }
}

/// `--model` as most commands take it: required.
public typealias ModelOption = ModelChoice<NoDefaultModel>
/// `--model` of the commands that translate for a user (`translate`, `serve`): models/mt by default.
public typealias TranslatorModelOption = ModelChoice<ShippedTranslator>

/// Runs a command body; library errors print their message (file, field, hint) to stderr and
/// exit 1; an interrupted training run exits 128 + the signal after its checkpoint. In an MPI job
/// of several ranks an error on one rank ends every rank (MPI_Abort), so none waits forever in a
/// collective; the interrupted ranks stop together and leave MPI cleanly.
public func reportingErrors(_ body: () async throws -> Void) async throws {
    let world = { Distributed.world }
    let who = { world().size > 1 ? "mixmoe (rank \(world().rank) of \(world().size))" : "mixmoe" }
    do {
        try await body()
    } catch let e as ValidationError {
        throw e
    } catch let e as ExitCode {
        throw e
    } catch let e as TrainingInterrupted {
        if world().isRoot { printErr("\(who()): \(e.localizedDescription)") }
        Distributed.finish()
        throw ExitCode(128 + e.signal)
    } catch {
        printAnyRank("\(who()): error: \(error.localizedDescription)")
        if world().size > 1 { world().abort(code: 1) }
        throw ExitCode(1)
    }
}

/// A message on stderr; in an MPI job only rank 0's (the ranks run the same command).
public func printErr(_ s: String) { if Distributed.world.isRoot { printAnyRank(s) } }
public func printAnyRank(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }
