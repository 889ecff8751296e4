import Foundation

/// `run.json` beside a trained model: the run record (settings, data identity, threads).
public enum RunRecord {
    public static func write(_ record: [String: String], to dir: URL) throws {
        try AtomicFile.write(try sortedJSON(record), to: ModelDirectory(dir).runRecord)
    }

    public static func read(_ dir: URL) -> [String: String]? {
        guard let d = try? Data(contentsOf: ModelDirectory(dir).runRecord) else { return nil }
        return try? JSONDecoder().decode([String: String].self, from: d)
    }
}
