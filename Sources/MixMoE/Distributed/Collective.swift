import CMPI
import Foundation
import Synchronization

/// Reduction of a collective.
public enum ReduceOp: Int32, Sendable {
    case sum = 0
    case max = 1
}

/// What the collectives of a run moved, and how long they took (the all-reduce's share of a step
/// in `bench train`).
public struct CollectiveTraffic: Sendable {
    public var calls = 0
    /// Bytes each rank contributed (the payload, not the algorithm's wire traffic).
    public var bytes = 0
    public var seconds = 0.0
    public init() {}
}

/// The collective operations data-parallel training needs: every rank calls the same operations
/// in the same order. ``SingleProcess`` is the world of one (every operation is the identity), so
/// training code is written once for both; ``MPICollective`` runs them over Open MPI.
public protocol Collective: AnyObject, Sendable {
    var rank: Int { get }
    var size: Int { get }
    /// In-place all-reduce of `count` floats.
    func allReduce(_ buf: UnsafeMutablePointer<Float>, count: Int, op: ReduceOp)
    /// In-place all-reduce of a few doubles (token counts, loss sums, flags).
    func allReduce(_ values: inout [Double], op: ReduceOp)
    /// Copies `count` floats from `root` to every rank.
    func broadcast(_ buf: UnsafeMutablePointer<Float>, count: Int, root: Int)
    /// Copies bytes from `root` to every rank (the receivers' arrays take the root's length).
    func broadcast(bytes: inout [UInt8], root: Int)
    /// Sums `send` (the parts of all ranks, `parts[r]` floats each, in rank order) over the ranks;
    /// this rank receives the sum of its part in `recv`.
    func reduceScatter(_ send: UnsafePointer<Float>, into recv: UnsafeMutablePointer<Float>, parts: [Int])
    /// `buf` holds every rank's part in rank order, this rank's in place; afterwards all of them.
    func allGather(_ buf: UnsafeMutablePointer<Float>, parts: [Int])
    func barrier()
    /// Ends every rank of the job with `code` (a rank that cannot go on must not leave the others
    /// waiting in a collective).
    func abort(code: Int32) -> Never
    var traffic: CollectiveTraffic { get }
}

extension Collective {
    public var isRoot: Bool { rank == 0 }

    /// True on every rank if `flag` is true on any rank.
    public func any(_ flag: Bool) -> Bool {
        var v = [flag ? 1.0 : 0]
        allReduce(&v, op: .max)
        return v[0] > 0
    }

    /// The root's string on every rank.
    public func broadcast(_ s: String, root: Int = 0) -> String {
        var b = Array(s.utf8)
        broadcast(bytes: &b, root: root)
        return String(decoding: b, as: UTF8.self)
    }
}

/// The world of one process: all-reduce, broadcast and barrier are the identity.
public final class SingleProcess: Collective, @unchecked Sendable {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func allReduce(_ buf: UnsafeMutablePointer<Float>, count: Int, op: ReduceOp) {}
    public func allReduce(_ values: inout [Double], op: ReduceOp) {}
    public func broadcast(_ buf: UnsafeMutablePointer<Float>, count: Int, root: Int) {}
    public func broadcast(bytes: inout [UInt8], root: Int) {}
    public func reduceScatter(_ send: UnsafePointer<Float>, into recv: UnsafeMutablePointer<Float>, parts: [Int]) {
        recv.update(from: send, count: parts[0])
    }
    public func allGather(_ buf: UnsafeMutablePointer<Float>, parts: [Int]) {}
    public func barrier() {}
    public func abort(code: Int32) -> Never { exit(code) }
    public var traffic: CollectiveTraffic { CollectiveTraffic() }
}

/// Errors of starting a distributed run.
public enum DistributedError: LocalizedError {
    case libraryMissing(detail: String)
    case initFailed(code: Int32)
    case unsupported(command: String)
    case dataDiffers(rank: Int, detail: String)
    case tooFewMicroBatches(microBatches: Int, ranks: Int)

    public var errorDescription: String? {
        switch self {
        case .libraryMissing(let d):
            return "launched by mpirun/srun, but Open MPI's library could not be loaded: \(d). "
                + "Hint: install Open MPI (Debian: apt-get install openmpi-bin), or set MIXMOE_MPI_LIBRARY to the path of libmpi.so."
        case .initFailed(let c):
            return "MPI_Init_thread failed (code \(c)) or does not provide MPI_THREAD_SERIALIZED."
        case .unsupported(let c):
            return "`mixmoe \(c)` runs in one process; under mpirun only `pretrain`, `train` and `bench train` are data-parallel. Hint: run it without mpirun."
        case .dataDiffers(let r, let d):
            return "rank \(r) does not see the same run as rank 0 (\(d)). Hint: every rank needs the same files and arguments."
        case .tooFewMicroBatches(let m, let n):
            return "a step has \(m) micro-batches for \(n) ranks, so some ranks would idle. Hint: lower --micro-tokens to at most --batch-tokens / \(n)."
        }
    }
}

/// Open MPI collectives through the CMPI shim (loaded with dlopen: a build needs no MPI).
public final class MPICollective: Collective, @unchecked Sendable {
    public let rank: Int
    public let size: Int
    public private(set) var traffic = CollectiveTraffic()

    /// Loads libmpi (`library`, default libmpi.so.40 / libmpi.so) and calls MPI_Init_thread.
    init(library: String?) throws {
        var err = [CChar](repeating: 0, count: 512)
        let rc = library.map { p in p.withCString { mixmoe_mpi_load($0, &err, err.count) } } ?? mixmoe_mpi_load(nil, &err, err.count)
        guard rc == 0 else { throw DistributedError.libraryMissing(detail: String(cString: err)) }
        let ic = mixmoe_mpi_init()
        guard ic == 0 else { throw DistributedError.initFailed(code: ic) }
        rank = Int(mixmoe_mpi_rank())
        size = Int(mixmoe_mpi_size())
    }

    private func timed(bytes: Int, _ body: () -> Int32) {
        let t = monotonicSeconds()
        let rc = body()
        // Open MPI's default handler ends the job on an error, so a non-zero code is unexpected.
        if rc != 0 { abort(code: 3) }
        traffic.calls += 1; traffic.bytes += bytes; traffic.seconds += monotonicSeconds() - t
    }

    public func allReduce(_ buf: UnsafeMutablePointer<Float>, count: Int, op: ReduceOp) {
        timed(bytes: 4 * count) { mixmoe_mpi_allreduce_float(buf, count, op.rawValue) }
    }
    public func allReduce(_ values: inout [Double], op: ReduceOp) {
        let n = values.count
        values.withUnsafeMutableBufferPointer { b in timed(bytes: 8 * n) { mixmoe_mpi_allreduce_double(b.baseAddress!, n, op.rawValue) } }
    }
    public func broadcast(_ buf: UnsafeMutablePointer<Float>, count: Int, root: Int) {
        timed(bytes: 4 * count) { mixmoe_mpi_bcast_float(buf, count, Int32(root)) }
    }
    public func broadcast(bytes: inout [UInt8], root: Int) {
        var n = [Double(bytes.count)]
        n.withUnsafeMutableBufferPointer { b in timed(bytes: 8) { mixmoe_mpi_bcast_bytes(b.baseAddress!, 8, Int32(root)) } }
        if rank != root { bytes = [UInt8](repeating: 0, count: Int(n[0])) }
        let c = bytes.count
        guard c > 0 else { return }
        bytes.withUnsafeMutableBytes { b in timed(bytes: c) { mixmoe_mpi_bcast_bytes(b.baseAddress!, c, Int32(root)) } }
    }
    public func reduceScatter(_ send: UnsafePointer<Float>, into recv: UnsafeMutablePointer<Float>, parts: [Int]) {
        let counts = Self.int32(parts)
        timed(bytes: 4 * parts.reduce(0, +)) { mixmoe_mpi_reduce_scatter_float(send, recv, counts) }
    }
    public func allGather(_ buf: UnsafeMutablePointer<Float>, parts: [Int]) {
        let counts = Self.int32(parts)
        var displs: [Int32] = [0]
        for c in counts.dropLast() { displs.append(displs.last! + c) }
        timed(bytes: 4 * parts[rank]) { mixmoe_mpi_allgather_float(buf, counts, displs) }
    }
    /// MPI counts are C ints.
    static func int32(_ v: [Int]) -> [Int32] {
        v.map {
            precondition($0 <= Int(Int32.max), "a part of \($0) values exceeds MPI's int count")
            return Int32($0)
        }
    }
    public func barrier() { timed(bytes: 0) { mixmoe_mpi_barrier() } }
    public func abort(code: Int32) -> Never {
        mixmoe_mpi_abort(code)
        exit(code)
    }
    func finalize() { _ = mixmoe_mpi_finalize() }
}

/// The process's world: ``SingleProcess`` unless the process was started by `mpirun` or `srun`
/// and ``start()`` was called (the CLI does, for the commands that train).
public enum Distributed {
    /// The world every collective call goes through; replaced once, by ``start()``.
    public static var world: any Collective { current.withLock { $0 } }
    private static let current = Mutex<any Collective>(SingleProcess())

    /// Environment variables an MPI launcher sets: Open MPI's mpirun, PMIx (srun --mpi=pmix), PMI.
    static let launcherVariables = ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"]

    /// True when an MPI launcher started this process.
    public static var launchedByMPI: Bool {
        let env = ProcessInfo.processInfo.environment
        return launcherVariables.contains { env[$0] != nil }
    }

    /// Joins the MPI job if this process was started by a launcher (MIXMOE_MPI_LIBRARY overrides
    /// the library path); otherwise stays a world of one. Returns the world.
    @discardableResult
    public static func start() throws -> Collective {
        try current.withLock { w in
            guard launchedByMPI, w is SingleProcess else { return w }
            w = try MPICollective(library: ProcessInfo.processInfo.environment["MIXMOE_MPI_LIBRARY"])
            return w
        }
    }

    /// MPI_Finalize (after the last collective; every rank must call it).
    public static func finish() {
        current.withLock { w in
            (w as? MPICollective)?.finalize()
            w = SingleProcess()
        }
    }
}
