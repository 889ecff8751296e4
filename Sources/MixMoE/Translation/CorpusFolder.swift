import Foundation

/// A corpus folder laid out like the shipped `data/demo` (and the full corpus it was cut from):
/// `mono/L.txt` (one segment per line) and `parallel/{train,dev,test}.L-en.tsv`
/// (`English<TAB>L`). The experiments, the demo and model cards all read corpora through it.
public struct CorpusFolder: Sendable {
    public let root: URL
    /// Non-English languages, each paired with English.
    public let languages: [String]
    public static let pivot = "en"
    /// The shipped corpus's languages.
    public static let defaultLanguages = ["cs", "de", "ru", "tr", "zh", "fi", "et"]

    public enum Split: String, Sendable { case train, dev, test }

    public init(_ root: URL, languages: [String] = CorpusFolder.defaultLanguages) {
        self.root = root; self.languages = languages
    }

    public func mono(_ lang: String) -> URL { root.appendingPathComponent("mono/\(lang).txt") }
    public func parallel(_ split: Split, _ lang: String) -> URL { root.appendingPathComponent("parallel/\(split.rawValue).\(lang)-en.tsv") }
    /// Monolingual files, English first.
    public var monoFiles: [URL] { ([Self.pivot] + languages).map(mono) }

    /// Throws for the first missing file of the given splits (and of `mono/` when asked).
    public func check(splits: [Split], mono needMono: Bool = true) throws {
        let files = (needMono ? monoFiles : []) + splits.flatMap { s in languages.map { parallel(s, $0) } }
        for f in files where !FileManager.default.fileExists(atPath: f.path) {
            throw DataError.missingFile(f.path + " (a corpus folder holds mono/L.txt and parallel/{train,dev,test}.L-en.tsv; pass --data DIR)")
        }
    }

    public func bitexts(_ split: Split) throws -> [Bitext] {
        try languages.map { try Corpus.readBitext(parallel(split, $0).path) }
    }

    /// Held-out monolingual text per language for perplexity: each language's side of the dev
    /// split, and for English the English side of the first `englishPerLanguage` dev pairs of
    /// every language. Written into `scratch` as `dev.L.txt`.
    public func devTexts(into scratch: URL, englishPerLanguage: Int = 200) throws -> [String: URL] {
        var dev: [String: URL] = [:], en: [String] = []
        for l in languages {
            let b = try Corpus.readBitext(parallel(.dev, l).path)
            let f = scratch.appendingPathComponent("dev.\(l).txt")
            try AtomicFile.write(b.pairs.map(\.b).joined(separator: "\n") + "\n", to: f)
            dev[l] = f
            en += b.pairs.map(\.a).prefix(englishPerLanguage)
        }
        let fe = scratch.appendingPathComponent("dev.\(Self.pivot).txt")
        try AtomicFile.write(en.joined(separator: "\n") + "\n", to: fe)
        dev[Self.pivot] = fe
        return dev
    }

    /// The first `maxBytes` of every monolingual file (cut at a line end), written into `scratch`.
    public func cappedMono(into scratch: URL, maxBytes: Int) throws -> [URL] {
        try ([Self.pivot] + languages).map { l in
            let lines = try readLines(mono(l), maxBytes: maxBytes)
            let f = scratch.appendingPathComponent("mono.\(l).txt")
            try AtomicFile.write(lines.joined(separator: "\n") + "\n", to: f)
            return f
        }
    }
}

/// Everything a comparison of methods reads from a corpus folder.
public struct ExperimentData: Sendable {
    public var mono: [URL]
    public var train: [Bitext]
    public var test: [Bitext]
    /// Held-out text per language (perplexity / forgetting).
    public var dev: [String: URL]

    /// Reads `corpus` (monolingual files capped at `monoBytes` each); scratch files go to `scratch`.
    /// `test` replaces the corpus's test split when given (any corpus files, every direction).
    public static func load(_ corpus: CorpusFolder, scratch: URL, monoBytes: Int, test: [String]? = nil) throws -> ExperimentData {
        try corpus.check(splits: test == nil ? [.train, .dev, .test] : [.train, .dev])
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        return ExperimentData(
            mono: try corpus.cappedMono(into: scratch, maxBytes: monoBytes), train: try corpus.bitexts(.train),
            test: try test.map { try $0.map { try Corpus.readBitext($0) } } ?? corpus.bitexts(.test),
            dev: try corpus.devTexts(into: scratch))
    }
}
