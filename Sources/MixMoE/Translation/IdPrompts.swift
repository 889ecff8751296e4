import Foundation

/// `mixmoe generate`'s input and output: prompts as JSON arrays of token ids, one per line, and
/// the continuation of each with its log-probability (0 for greedy).
public enum IdPrompts {
    /// The prompts of `lines` (blank lines skipped); `name` is the file named in errors.
    public static func parse(_ lines: [String], name: String) throws -> [[Int32]] {
        var ids: [[Int32]] = []
        for (i, line) in lines.enumerated() {
            let l = line.trimmingCharacters(in: .whitespaces)
            guard !l.isEmpty else { continue }
            guard let p = try? JSONDecoder().decode([Int32].self, from: Data(l.utf8)), !p.isEmpty else {
                throw DataError.malformed(file: name, line: i + 1, expected: "a non-empty JSON array of token ids, e.g. [1, 2, 3]")
            }
            ids.append(p)
        }
        return ids
    }

    /// One generated continuation.
    public struct Output: Encodable, Sendable {
        public var ids: [Int32]
        public var logProb: Double
        enum CodingKeys: String, CodingKey {
            case ids
            case logProb = "log_prob"
        }
    }
}

extension Generator {
    /// Continues every prompt by greedy search (`beams` 1) or beam search, at most `maxNew` new
    /// tokens and never past the model's context, `batch` prompts decoded together.
    public func generate(_ prompts: [[Int32]], beams: Int, lengthPenalty: Double, maxNew: Int, batch: Int) throws -> [IdPrompts.Output] {
        let context = model.config.maxPositionEmbeddings
        if let bad = prompts.first(where: { $0.count >= context }) {
            throw ModelError.contextOverflow(what: "a prompt", tokens: bad.count + 1, limit: context)
        }
        let caps = prompts.map { min(maxNew, context - $0.count) }
        if beams > 1 {
            return try beamSearch(prompts, maxNew: caps, beams: beams, lengthPenalty: lengthPenalty, segments: batch).map {
                IdPrompts.Output(ids: $0.tokens, logProb: $0.logProb)
            }
        }
        return try greedy(prompts, maxNew: caps, slots: batch).map { IdPrompts.Output(ids: $0, logProb: 0) }
    }
}
