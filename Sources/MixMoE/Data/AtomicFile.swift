import Foundation

/// Writes a file so that readers see the old file or the complete new one, never a half-written
/// one: a temporary file in the same directory, fsync, then rename.
public enum AtomicFile {
    public static func write(_ data: Data, to url: URL) throws {
        try write(to: url) { h in try h.write(contentsOf: data) }
    }

    public static func write(_ string: String, to url: URL) throws { try write(Data(string.utf8), to: url) }

    /// `value` as indented JSON with sorted keys (stable across processes, readable in a diff):
    /// the form of every JSON file mixmoe writes (reports, configs, run and checkpoint state).
    public static func writeJSON<T: Encodable>(_ value: T, to url: URL) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try write(enc.encode(value), to: url)
    }

    /// Streams a file: `body` writes the contents piece by piece to the handle (a model of several
    /// GB never has to exist twice in memory). Nothing is left behind if `body` throws.
    public static func write(to url: URL, _ body: (FileHandle) throws -> Void) throws {
        let dir = url.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
        guard FileManager.default.createFile(atPath: tmp.path, contents: nil) else {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSLocalizedDescriptionKey: "cannot create \(tmp.path)"])
        }
        let h = try FileHandle(forWritingTo: tmp)
        do {
            try body(h)
            try h.synchronize()
            try h.close()
        } catch {
            try? h.close()
            try? FileManager.default.removeItem(at: tmp)
            throw error
        }
        if rename(tmp.path, url.path) != 0 {
            let e = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: tmp)
            throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: "cannot rename to \(url.path): \(e)"])
        }
    }
}
