import Foundation

/// The safetensors format: an 8-byte little-endian header length `N`, `N` bytes of JSON mapping
/// tensor names to `{dtype, shape, data_offsets: [begin, end]}` (offsets relative to the byte
/// buffer after the header), an optional `__metadata__` string map, then the data.
/// Reading validates everything before any tensor is used; F32, F16 and BF16 convert to Float.
/// A file is memory-mapped, and the pages of a tensor are returned to the kernel once it has been
/// converted, so loading a model of several GB costs its destination buffer and little more.
public struct SafetensorsFile: Sendable {
    public struct Info: Sendable, Equatable {
        public let dtype: String
        public let shape: [Int]
        public let begin: Int
        public let end: Int
    }

    public let path: String
    public let tensors: [String: Info]
    public let metadata: [String: String]
    private let data: Data
    private let dataStart: Int
    /// The mapping `data` views (nil for in-memory data).
    private let mapping: MappedFile?

    static let dtypeSizes = ["F32": 4, "F16": 2, "BF16": 2]
    /// dtypes that exist in the format but that no Llama weight uses
    static let otherDtypes = ["F64", "I64", "I32", "I16", "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2", "U16", "U32", "U64"]

    public init(url: URL) throws {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw ModelError.missingFile(url.path, hint: "a model directory needs model.safetensors (or an index with shards).")
        }
        let map = try MappedFile(path: url.path)
        try self.init(data: map.data, path: url.path, mapping: map)
    }

    public init(data d: Data, path: String) throws { try self.init(data: d, path: path, mapping: nil) }

    private init(data d: Data, path: String, mapping: MappedFile?) throws {
        self.path = path
        self.mapping = mapping
        func bad(_ s: String) -> ModelError { .safetensors(file: path, detail: s) }
        guard d.count >= 8 else { throw bad("file is \(d.count) bytes, shorter than the 8-byte header length") }
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(d[d.startIndex + i]) << (8 * UInt64(i)) }
        guard n <= UInt64(d.count - 8) else {
            throw bad("header length \(n) exceeds the \(d.count - 8) bytes after it (truncated file?)")
        }
        guard n <= 100_000_000 else { throw bad("header length \(n) is implausibly large") }
        let headerData = d.subdata(in: (d.startIndex + 8)..<(d.startIndex + 8 + Int(n)))
        let header: SafetensorsHeader
        do {
            header = try JSONDecoder().decode(SafetensorsHeader.self, from: headerData)
        } catch let p as SafetensorsHeader.Problem {
            throw bad(p.detail)
        } catch {
            throw bad("header is not a JSON object")
        }
        let dataBytes = d.count - 8 - Int(n)
        var tensors: [String: Info] = [:]
        for (name, t) in header.tensors {
            let dtype = t.dtype
            guard let size = Self.dtypeSizes[dtype] else {
                if Self.otherDtypes.contains(dtype) {
                    throw bad("tensor '\(name)': dtype \(dtype) is not supported for weights (F32, F16, BF16)")
                }
                throw bad("tensor '\(name)': unknown dtype '\(dtype)'")
            }
            let shape = t.shape, off = t.dataOffsets
            guard shape.allSatisfy({ $0 >= 0 }) else {
                throw bad("tensor '\(name)': 'shape' must be a list of non-negative integers")
            }
            guard off.count == 2, off[0] >= 0, off[0] <= off[1] else {
                throw bad("tensor '\(name)': 'data_offsets' must be [begin, end] with 0 <= begin <= end")
            }
            guard off[1] <= dataBytes else {
                throw bad("tensor '\(name)': data ends at byte \(off[1]) but the file has only \(dataBytes) data bytes (truncated file?)")
            }
            var count = 1
            for s in shape {
                let (m, o) = count.multipliedReportingOverflow(by: s)
                guard !o else { throw bad("tensor '\(name)': shape \(shape) overflows") }
                count = m
            }
            let (bytes, overflow) = count.multipliedReportingOverflow(by: size)
            guard !overflow, off[1] - off[0] == bytes else {
                throw bad("tensor '\(name)': \(off[1] - off[0]) data bytes for shape \(shape) of \(dtype), expected \(count * size)")
            }
            tensors[name] = Info(dtype: dtype, shape: shape, begin: off[0], end: off[1])
        }
        // Tensors may not overlap (the format requires a dense, ordered buffer).
        let sorted = tensors.sorted { $0.value.begin < $1.value.begin }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.value.end > b.value.begin {
            throw bad("tensors '\(a.key)' and '\(b.key)' overlap")
        }
        self.tensors = tensors
        metadata = header.metadata
        data = d
        dataStart = 8 + Int(n)
    }

    /// Converts tensor `name` to Float into `dst` (which must hold its element count). A mapped
    /// file is read in pieces whose pages go back to the kernel right after (read again if ever
    /// needed), so loading costs the destination and at most one piece of the file.
    public func read(_ name: String, into dst: UnsafeMutablePointer<Float>) {
        let dtype = tensors[name]!.dtype
        pieces(name) { start, n, src in Self.floats(src, dtype, n, into: dst + start) }
    }

    /// Tensor `name` as bf16 into `dst`: BF16 is copied as stored, F32 and F16 are rounded to
    /// nearest even (through a small fp32 tile, never a copy of the tensor).
    public func readHalf(_ name: String, into dst: UnsafeMutablePointer<UInt16>) {
        let dtype = tensors[name]!.dtype, size = Self.dtypeSizes[dtype]!
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 4096) { tile in
            pieces(name) { start, n, src in
                if dtype == "BF16" {
                    UnsafeMutableRawPointer(dst + start).copyMemory(from: src, byteCount: 2 * n)
                    return
                }
                for t0 in stride(from: 0, to: n, by: 4096) {
                    let m = min(4096, n - t0)
                    Self.floats(src + t0 * size, dtype, m, into: tile.baseAddress!)
                    BF16.narrow(tile.baseAddress!, dst + start + t0, count: m)
                }
            }
        }
    }

    /// `n` stored values of `dtype` at `src` (possibly unaligned) as Float into `out`.
    private static func floats(_ src: UnsafeRawPointer, _ dtype: String, _ n: Int, into out: UnsafeMutablePointer<Float>) {
        switch dtype {
        case "F32":
            UnsafeMutableRawPointer(out).copyMemory(from: src, byteCount: 4 * n)
        case "F16":
            for i in 0..<n { out[i] = Float(src.loadUnaligned(fromByteOffset: 2 * i, as: Float16.self)) }
        default:  // BF16: the upper half of an IEEE float
            for i in 0..<n { out[i] = BF16.float(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        }
    }

    /// Calls `body(start, count, bytes)` for consecutive pieces of tensor `name`, handing each
    /// piece's file pages back to the kernel after it.
    private func pieces(_ name: String, _ body: (Int, Int, UnsafeRawPointer) -> Void) {
        let info = tensors[name]!
        let count = info.shape.reduce(1, *), size = Self.dtypeSizes[info.dtype]!
        let piece = 1 << 24  // elements
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let base = raw.baseAddress! + dataStart + info.begin
            for start in stride(from: 0, to: count, by: piece) {
                let n = min(piece, count - start)
                body(start, n, base + start * size)
                let at = dataStart + info.begin + start * size
                mapping?.release(at..<at + n * size)
            }
        }
    }

    public func floats(_ name: String) -> [Float] {
        let n = tensors[name]!.shape.reduce(1, *)
        return [Float](unsafeUninitializedCapacity: n) { buf, c in
            read(name, into: buf.baseAddress!); c = n
        }
    }

    /// Writes F32 tensors (in the given order) atomically, streaming them to the file: no copy of
    /// the model is made in memory.
    public static func write(
        _ url: URL, tensors: [(name: String, shape: [Int], values: UnsafePointer<Float>)],
        metadata: [String: String] = [:]
    ) throws {
        try write(url, stored: tensors.map { (name: $0.name, shape: $0.shape, values: .f32($0.values)) }, metadata: metadata)
    }

    /// Writes tensors in their storage types (F32 or BF16), in the given order, atomically and
    /// streamed.
    public static func write(
        _ url: URL, stored tensors: [(name: String, shape: [Int], values: WeightOperand)], metadata: [String: String] = [:]
    ) throws {
        try AtomicFile.write(to: url) { h in
            try h.write(contentsOf: header(tensors.map { ($0.name, $0.shape, $0.values.dtype) }, metadata: metadata))
            for t in tensors {
                var p: UnsafeRawPointer, left = t.values.dtype.bytes * t.shape.reduce(1, *)
                switch t.values {
                case .f32(let f): p = UnsafeRawPointer(f)
                case .bf16(let b): p = UnsafeRawPointer(b)
                }
                while left > 0 {  // in pieces, so that the file system never needs one huge write
                    let n = min(left, 64 << 20)
                    try h.write(contentsOf: Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: p), count: n, deallocator: .none))
                    p += n; left -= n
                }
            }
        }
    }

    /// The bytes of a safetensors file holding F32 `tensors`.
    public static func serialize(
        _ tensors: [(name: String, shape: [Int], values: UnsafePointer<Float>)],
        metadata: [String: String] = [:]
    ) throws -> Data {
        var out = try header(tensors.map { ($0.name, $0.shape, DType.f32) }, metadata: metadata)
        for t in tensors {
            out.append(UnsafeBufferPointer(start: t.values, count: t.shape.reduce(1, *)))
        }
        return out
    }

    /// The length prefix and JSON header of a file of tensors stored in the given order.
    static func header(_ tensors: [(name: String, shape: [Int], dtype: DType)], metadata: [String: String]) throws -> Data {
        var entries: [(name: String, entry: SafetensorsHeader.Entry)] = []
        var offset = 0
        for t in tensors {
            let bytes = t.shape.reduce(1, *) * t.dtype.bytes
            entries.append((t.name, .init(dtype: t.dtype == .f32 ? "F32" : "BF16", shape: t.shape, dataOffsets: [offset, offset + bytes])))
            offset += bytes
        }
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        var json = try enc.encode(SafetensorsHeader(tensors: entries, metadata: metadata))
        while json.count % 8 != 0 { json.append(0x20) }  // pad with spaces, as the reference writer does
        var out = Data(capacity: 8 + json.count)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        return out
    }
}

/// A read-only private mapping of a whole file. Its pages are loaded on first touch and count
/// towards the process's resident memory until `release` hands them back.
final class MappedFile: @unchecked Sendable {
    let base: UnsafeMutableRawPointer?
    let count: Int

    init(path: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw ModelError.missingFile(path, hint: "cannot open it: \(String(cString: strerror(errno))).") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw ModelError.safetensors(file: path, detail: "cannot stat the file") }
        count = Int(st.st_size)
        if count == 0 {
            base = nil
            return
        }
        guard let p = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw ModelError.safetensors(file: path, detail: "cannot map the file: \(String(cString: strerror(errno)))")
        }
        base = p
    }

    deinit { if let base { munmap(base, count) } }

    /// The mapping as `Data`, without copying (valid while this object lives).
    var data: Data {
        guard let base else { return Data() }
        return Data(bytesNoCopy: base, count: count, deallocator: .none)
    }

    /// Drops the whole pages inside `range` from this process (MADV_DONTNEED on a private,
    /// unmodified file mapping: a later touch reads the file again).
    func release(_ range: Range<Int>) {
        guard let base else { return }
        releaseWholePages(base + range.lowerBound, bytes: range.count)
    }
}
