import Foundation

/// Sentence pairs in two languages (one file, or a Moses pair of files).
public struct Bitext: Sendable {
    public var langA: String
    public var langB: String
    public var pairs: [(a: String, b: String)]
    public var source: String

    /// Segments of one direction (`a -> b` or `b -> a`).
    public func segments(_ d: Direction) -> [(src: String, tgt: String)] {
        if d.src == langA && d.tgt == langB { return pairs.map { ($0.a, $0.b) } }
        if d.src == langB && d.tgt == langA { return pairs.map { ($0.b, $0.a) } }
        return []
    }

    public var directions: [Direction] { [Direction(langA, langB), Direction(langB, langA)] }
}

/// Readers of parallel and monolingual corpora. Every malformed input is an error naming the file
/// and the line (or the array element of a JSON file).
///
/// Accepted parallel inputs:
/// - `*.tsv`: one pair per line, two tab-separated fields. Languages from `columns` or from the
///   file name: `NAME.xx-en.tsv` follows the shared corpus layout `English<TAB>xx`.
/// - `A.xx,B.yy` (two paths joined by a comma): Moses-style line-aligned files; languages from
///   the extensions.
/// - `*.jsonl` / `*.json`: ALMA's objects `{"translation": {"de": "...", "en": "..."}}`, as JSON
///   lines or as one JSON array (ALMA's own files).
public enum Corpus {
    public static func readBitext(_ spec: String, columns: (String, String)? = nil) throws -> Bitext {
        if spec.contains(","), !FileManager.default.fileExists(atPath: spec) {
            let parts = spec.split(separator: ",").map(String.init)
            guard parts.count == 2 else {
                throw DataError.malformed(file: spec, line: 0, expected: "two comma-separated files (Moses pair FILE.xx,FILE.yy)")
            }
            return try readMoses(parts[0], parts[1])
        }
        if spec.hasSuffix(".jsonl") { return try readALMA(spec, jsonLines: true) }
        if spec.hasSuffix(".json") { return try readALMA(spec, jsonLines: false) }
        return try readTSV(spec, columns: columns)
    }

    /// Languages of a TSV file from its name: `NAME.xx-en.tsv` is English first (the shared corpus).
    static func tsvColumns(_ path: String) -> (String, String)? {
        let name = URL(fileURLWithPath: path).lastPathComponent
        guard let dot = name.range(of: ".tsv", options: .backwards) else { return nil }
        let stem = name[..<dot.lowerBound]
        let last = stem.split(separator: ".").last.map(String.init) ?? String(stem)
        guard let d = Direction(last) else { return nil }
        return d.tgt == "en" ? ("en", d.src) : (d.src, d.tgt)
    }

    public static func readTSV(_ path: String, columns: (String, String)? = nil) throws -> Bitext {
        guard let cols = columns ?? tsvColumns(path) else {
            throw DataError.malformed(
                file: path, line: 0,
                expected: "a file name like NAME.de-en.tsv (English<TAB>German), or explicit --tsv-columns de,en")
        }
        _ = try Languages.name(cols.0, file: path); _ = try Languages.name(cols.1, file: path)
        var pairs: [(String, String)] = []
        for (i, line) in try readLines(URL(fileURLWithPath: path)).enumerated() {
            if line.isEmpty { continue }
            let f = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard f.count == 2 else {
                throw DataError.malformed(
                    file: path, line: i + 1,
                    expected: f.count < 2
                        ? "two tab-separated fields (\(cols.0)<TAB>\(cols.1)); found no tab"
                        : "two tab-separated fields; found \(f.count)")
            }
            guard !f[0].trimmingCharacters(in: .whitespaces).isEmpty, !f[1].trimmingCharacters(in: .whitespaces).isEmpty else {
                throw DataError.malformed(file: path, line: i + 1, expected: "non-empty text on both sides")
            }
            pairs.append((String(f[0]), String(f[1])))
        }
        guard !pairs.isEmpty else { throw DataError.empty(path) }
        return Bitext(langA: cols.0, langB: cols.1, pairs: pairs, source: path)
    }

    public static func readMoses(_ a: String, _ b: String) throws -> Bitext {
        func lang(_ p: String) throws -> String {
            let ext = URL(fileURLWithPath: p).pathExtension
            _ = try Languages.name(ext, file: p)
            return ext
        }
        let la = try lang(a), lb = try lang(b)
        let A = try readLines(URL(fileURLWithPath: a)), B = try readLines(URL(fileURLWithPath: b))
        guard A.count == B.count else {
            throw DataError.malformed(
                file: b, line: min(A.count, B.count) + 1,
                expected: "as many lines as \(a) (\(A.count)); \(b) has \(B.count)")
        }
        var pairs: [(String, String)] = []
        for i in A.indices {
            if A[i].isEmpty && B[i].isEmpty { continue }
            guard !A[i].isEmpty else { throw DataError.malformed(file: a, line: i + 1, expected: "non-empty text (its pair in \(b) is not empty)") }
            guard !B[i].isEmpty else { throw DataError.malformed(file: b, line: i + 1, expected: "non-empty text (its pair in \(a) is not empty)") }
            pairs.append((A[i], B[i]))
        }
        guard !pairs.isEmpty else { throw DataError.empty(a) }
        return Bitext(langA: la, langB: lb, pairs: pairs, source: "\(a),\(b)")
    }

    /// ALMA's `{"translation": {"xx": "...", "en": "..."}}` objects.
    public static func readALMA(_ path: String, jsonLines: Bool) throws -> Bitext {
        /// One object; keys other than "translation" are ignored.
        struct Entry: Decodable { var translation: [String: String] }
        let shape = "{\"translation\": {\"xx\": \"...\", \"yy\": \"...\"}} with two languages"
        func notJSON(_ e: any Error) -> Bool {
            if case DecodingError.dataCorrupted(let c) = e, c.codingPath.isEmpty { return true }
            return false
        }
        var objects: [(Int, [String: String])] = []
        if jsonLines {
            for (i, line) in try readLines(URL(fileURLWithPath: path)).enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
                do {
                    objects.append((i + 1, try JSONDecoder().decode(Entry.self, from: Data(line.utf8)).translation))
                } catch {
                    throw DataError.malformed(
                        file: path, line: i + 1, expected: notJSON(error) ? "one JSON object per line (this line is not valid JSON)" : shape)
                }
            }
        } else {
            let text = try readLines(URL(fileURLWithPath: path)).joined(separator: "\n")
            do {
                objects = try JSONDecoder().decode([Entry].self, from: Data(text.utf8)).enumerated().map { ($0.offset + 1, $0.element.translation) }
            } catch let e as DecodingError {
                let element = e.codingPath.first?.intValue
                guard let element else {
                    throw DataError.malformed(
                        file: path, line: 0, expected: "a JSON array of {\"translation\": {...}} objects (the file is not valid JSON)")
                }
                throw DataError.malformed(file: path, line: 0, expected: "\(shape) (array element \(element + 1))")
            }
        }
        var langs: (String, String)? = nil
        var pairs: [(String, String)] = []
        for (ln, t) in objects {
            let place = jsonLines ? ln : 0
            let what = jsonLines ? "" : " (array element \(ln))"
            guard t.count == 2 else {
                throw DataError.malformed(file: path, line: place, expected: "\(shape)\(what)")
            }
            let keys = t.keys.sorted()
            for k in keys { _ = try Languages.name(k, file: path, line: place) }
            let l = langs ?? (keys.contains("en") ? (keys.first { $0 != "en" }!, "en") : (keys[0], keys[1]))
            if langs == nil { langs = l }
            guard Set(keys) == Set([l.0, l.1]) else {
                throw DataError.malformed(file: path, line: place, expected: "the languages \(l.0) and \(l.1) like the first object\(what)")
            }
            guard let a = t[l.0], let b = t[l.1],
                !a.trimmingCharacters(in: .whitespaces).isEmpty, !b.trimmingCharacters(in: .whitespaces).isEmpty
            else {
                throw DataError.malformed(file: path, line: place, expected: "non-empty strings for both languages\(what)")
            }
            pairs.append((a, b))
        }
        guard let l = langs, !pairs.isEmpty else { throw DataError.empty(path) }
        return Bitext(langA: l.0, langB: l.1, pairs: pairs, source: path)
    }

    /// Monolingual text: lines, or JSON lines `{"text": ...}` for `*.jsonl`.
    public static func readMonolingual(_ path: String) throws -> [String] {
        struct TextLine: Decodable { var text: String }
        let lines = try readLines(URL(fileURLWithPath: path))
        guard path.hasSuffix(".jsonl") else { return lines.filter { !$0.isEmpty } }
        return try lines.enumerated().compactMap { i, l in
            if l.trimmingCharacters(in: .whitespaces).isEmpty { return nil }
            guard let t = (try? JSONDecoder().decode(TextLine.self, from: Data(l.utf8)))?.text else {
                throw DataError.malformed(file: path, line: i + 1, expected: "a JSON object with a string field \"text\"")
            }
            return t
        }
    }
}

extension Bitext {
    /// The pairs that share no segment with `heldOut`: a pair is dropped when its side in
    /// language L equals (exactly) a segment in language L of any held-out bitext. Training on a
    /// pair whose source is a test source (with another reference) would score the test partly on
    /// memory; this removes such pairs before training. Returns the kept bitext and how many
    /// pairs were dropped.
    public func excluding(_ heldOut: [Bitext]) -> (kept: Bitext, dropped: Int) {
        var seen: [String: Set<String>] = [:]
        for h in heldOut {
            seen[h.langA, default: []].formUnion(h.pairs.map(\.a))
            seen[h.langB, default: []].formUnion(h.pairs.map(\.b))
        }
        let a = seen[langA] ?? [], b = seen[langB] ?? []
        var out = self
        out.pairs = pairs.filter { !a.contains($0.a) && !b.contains($0.b) }
        return (out, pairs.count - out.pairs.count)
    }
}
