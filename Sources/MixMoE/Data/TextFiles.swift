import Foundation

/// Errors reading training or evaluation text; each names the file and the line.
public enum DataError: LocalizedError, Equatable {
    case missingFile(String)
    case invalidUTF8(file: String, line: Int)
    case malformed(file: String, line: Int, expected: String)
    case empty(String)

    public var errorDescription: String? {
        switch self {
        case .missingFile(let f): return "'\(f)' not found. Hint: check the path."
        case .invalidUTF8(let f, let l): return "\(f):\(l): invalid UTF-8. Hint: convert the file with iconv -t UTF-8."
        case .malformed(let f, let l, let e): return l > 0 ? "\(f):\(l): expected \(e)." : "\(f): expected \(e)."
        case .empty(let f): return "\(f): no usable lines. Hint: is this the right file?"
        }
    }
}

/// Reads UTF-8 text as lines (LF or CRLF). Invalid UTF-8 is an error naming the line, never a
/// silent replacement. `maxBytes` reads only a prefix (cut at a line boundary).
public func readLines(_ url: URL, maxBytes: Int? = nil) throws -> [String] {
    guard let handle = FileHandle(forReadingAtPath: url.path) else { throw DataError.missingFile(url.path) }
    defer { try? handle.close() }
    var data: Data
    if let maxBytes {
        data = (try handle.read(upToCount: maxBytes)) ?? Data()
        if data.count == maxBytes, let cut = data.lastIndex(of: 0x0A) { data = data.prefix(upTo: cut + 1) }
    } else {
        data = (try handle.readToEnd()) ?? Data()
    }
    var lines: [String] = []
    var lineNo = 0
    try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
        let bytes = raw.bindMemory(to: UInt8.self)
        var start = 0
        while start < bytes.count {
            lineNo += 1
            var end = start
            while end < bytes.count, bytes[end] != 0x0A { end += 1 }
            var stop = end
            if stop > start, bytes[stop - 1] == 0x0D { stop -= 1 }
            guard let s = String(validating: UnsafeBufferPointer(rebasing: bytes[start..<stop]), as: UTF8.self) else {
                throw DataError.invalidUTF8(file: url.path, line: lineNo)
            }
            lines.append(s)
            start = end + 1
        }
    }
    return lines
}
