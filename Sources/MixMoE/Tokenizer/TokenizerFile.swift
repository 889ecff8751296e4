import Foundation

/// The parts of a Hugging Face `tokenizer.json` that a byte-level BPE tokenizer uses, as Codable
/// types in the layout of `tokenizers`' serde output (format version 1.0).
///
/// Keys this reader does not know are ignored, as `tokenizers` ignores them. A component of a type
/// that is not implemented here (a WordPiece model, a Lowercase normalizer, a Whitespace
/// pre-tokenizer) is refused while decoding, with the path of the field that names it, so the error
/// says exactly which part of the file is the problem. Writing encodes the same types, with the
/// explicit `null`s `tokenizers` writes.
struct TokenizerFile: Codable {
    var version: String?
    var addedTokens: [AddedTokenEntry]
    var normalizer: NormalizerEntry?
    var preTokenizer: PreTokenizerEntry?
    var postProcessor: PostProcessorEntry?
    var decoder: DecoderEntry?
    var model: BPEModel

    enum CodingKeys: String, CodingKey {
        case version, truncation, padding, normalizer, decoder, model
        case addedTokens = "added_tokens"
        case preTokenizer = "pre_tokenizer"
        case postProcessor = "post_processor"
    }

    init(
        addedTokens: [AddedTokenEntry], preTokenizer: PreTokenizerEntry, postProcessor: PostProcessorEntry?,
        model: BPEModel
    ) {
        self.version = "1.0"
        self.addedTokens = addedTokens
        self.preTokenizer = preTokenizer
        self.postProcessor = postProcessor
        self.decoder = .byteLevel
        self.model = model
    }

    init(from decoder: any Swift.Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        version = try c.decodeIfPresent(String.self, forKey: .version)
        addedTokens = try c.decodeIfPresent([AddedTokenEntry].self, forKey: .addedTokens) ?? []
        normalizer = try c.decodeIfPresent(NormalizerEntry.self, forKey: .normalizer)
        preTokenizer = try c.decodeIfPresent(PreTokenizerEntry.self, forKey: .preTokenizer)
        postProcessor = try c.decodeIfPresent(PostProcessorEntry.self, forKey: .postProcessor)
        self.decoder = try c.decodeIfPresent(DecoderEntry.self, forKey: .decoder)
        model = try c.decode(BPEModel.self, forKey: .model)
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(version, forKey: .version)
        try c.encodeNil(forKey: .truncation)
        try c.encodeNil(forKey: .padding)
        try c.encode(addedTokens, forKey: .addedTokens)
        try c.encodeOrNull(normalizer, forKey: .normalizer)
        try c.encodeOrNull(preTokenizer, forKey: .preTokenizer)
        try c.encodeOrNull(postProcessor, forKey: .postProcessor)
        try c.encodeOrNull(self.decoder, forKey: .decoder)
        try c.encode(model, forKey: .model)
    }

    /// A field this reader refuses: its path in the file, and what was expected or is supported.
    struct FieldError: Error {
        enum Kind {
            case invalid(expected: String)
            case unsupported(value: String, supported: String)
        }
        var path: [any CodingKey]
        var kind: Kind

        static func unsupported(_ path: [any CodingKey], _ value: String, _ supported: String) -> FieldError {
            FieldError(path: path, kind: .unsupported(value: value, supported: supported))
        }
        static func invalid(_ path: [any CodingKey], _ expected: String) -> FieldError {
            FieldError(path: path, kind: .invalid(expected: expected))
        }
    }

    /// One entry of `added_tokens`.
    struct AddedTokenEntry: Codable {
        var id: Int
        var content: String
        var special: Bool?
        var lstrip: Bool?
        var rstrip: Bool?
        var singleWord: Bool?
        var normalized: Bool?

        enum CodingKeys: String, CodingKey {
            case id, content, special, lstrip, rstrip, normalized
            case singleWord = "single_word"
        }

        init(_ t: BPETokenizer.AddedToken) {
            id = Int(t.id)
            content = t.content
            special = t.special
            lstrip = t.lstrip
            rstrip = t.rstrip
            singleWord = t.singleWord
            normalized = false
        }

        init(from decoder: any Swift.Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            id = try c.decode(Int.self, forKey: .id)
            guard id >= 0, id < Int(Int32.max) else { throw FieldError.invalid(c.codingPath + [CodingKeys.id], "a non-negative integer id") }
            content = try c.decode(String.self, forKey: .content)
            special = try c.decodeIfPresent(Bool.self, forKey: .special)
            lstrip = try c.decodeIfPresent(Bool.self, forKey: .lstrip)
            rstrip = try c.decodeIfPresent(Bool.self, forKey: .rstrip)
            singleWord = try c.decodeIfPresent(Bool.self, forKey: .singleWord)
            normalized = try c.decodeIfPresent(Bool.self, forKey: .normalized)
        }

        var token: BPETokenizer.AddedToken {
            BPETokenizer.AddedToken(
                id: Int32(id), content: content, special: special ?? false, lstrip: lstrip ?? false,
                rstrip: rstrip ?? false, singleWord: singleWord ?? false)
        }
    }

    /// `normalizer`: NFC, or a sequence of normalizers.
    indirect enum NormalizerEntry: Codable {
        case nfc
        case sequence([NormalizerEntry])

        enum CodingKeys: String, CodingKey { case type, normalizers }

        init(from decoder: any Swift.Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let type = try c.decode(String.self, forKey: .type)
            switch type {
            case "NFC": self = .nfc
            case "Sequence": self = .sequence(try c.decodeIfPresent([NormalizerEntry].self, forKey: .normalizers) ?? [])
            default: throw FieldError.unsupported(c.codingPath + [CodingKeys.type], "\"\(type)\"", "null, NFC, Sequence")
            }
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            switch self {
            case .nfc: try c.encode("NFC", forKey: .type)
            case .sequence(let ns):
                try c.encode("Sequence", forKey: .type)
                try c.encode(ns, forKey: .normalizers)
            }
        }
    }

    /// `pre_tokenizer`: a regex Split (one of the patterns this tokenizer implements, Isolated),
    /// ByteLevel, or a sequence of them.
    indirect enum PreTokenizerEntry: Codable {
        case sequence([PreTokenizerEntry])
        case split(SplitPattern)
        case byteLevel(addPrefixSpace: Bool, useRegex: Bool)

        enum CodingKeys: String, CodingKey {
            case type, pretokenizers, pattern, behavior, invert
            case addPrefixSpace = "add_prefix_space"
            case trimOffsets = "trim_offsets"
            case useRegex = "use_regex"
        }
        enum PatternKeys: String, CodingKey { case regex = "Regex" }

        init(from decoder: any Swift.Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let type = try c.decode(String.self, forKey: .type)
            switch type {
            case "Sequence":
                self = .sequence(try c.decodeIfPresent([PreTokenizerEntry].self, forKey: .pretokenizers) ?? [])
            case "Split":
                let p = try? c.nestedContainer(keyedBy: PatternKeys.self, forKey: .pattern)
                guard let p, let rx = try p.decodeIfPresent(String.self, forKey: .regex) else {
                    throw FieldError.unsupported(
                        c.codingPath + [CodingKeys.pattern], "non-regex", "{\"Regex\": <GPT-2, Llama-3 or Qwen2 pattern>}")
                }
                guard let sp = SplitPattern(regex: rx) else {
                    throw FieldError.unsupported(p.codingPath + [PatternKeys.regex], rx, "the GPT-2, Llama-3 and Qwen2 patterns")
                }
                let behavior = try c.decodeIfPresent(String.self, forKey: .behavior)
                let invert = try c.decodeIfPresent(Bool.self, forKey: .invert) ?? false
                guard behavior == "Isolated", !invert else {
                    throw FieldError.unsupported(
                        c.codingPath + [CodingKeys.behavior], behavior ?? "nil", "Isolated, invert false")
                }
                self = .split(sp)
            case "ByteLevel":
                self = .byteLevel(
                    addPrefixSpace: try c.decodeIfPresent(Bool.self, forKey: .addPrefixSpace) ?? false,
                    useRegex: try c.decodeIfPresent(Bool.self, forKey: .useRegex) ?? true)
            default:
                throw FieldError.unsupported(c.codingPath + [CodingKeys.type], "\"\(type)\"", "ByteLevel, Split, Sequence")
            }
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            switch self {
            case .sequence(let ps):
                try c.encode("Sequence", forKey: .type)
                try c.encode(ps, forKey: .pretokenizers)
            case .split(let sp):
                try c.encode("Split", forKey: .type)
                var p = c.nestedContainer(keyedBy: PatternKeys.self, forKey: .pattern)
                try p.encode(sp.regex, forKey: .regex)
                try c.encode("Isolated", forKey: .behavior)
                try c.encode(false, forKey: .invert)
            case .byteLevel(let prefix, let useRegex):
                try c.encode("ByteLevel", forKey: .type)
                try c.encode(prefix, forKey: .addPrefixSpace)
                try c.encode(true, forKey: .trimOffsets)
                try c.encode(useRegex, forKey: .useRegex)
            }
        }
    }

    /// `post_processor`: ByteLevel (offsets only: no tokens added), TemplateProcessing (the special
    /// tokens around a single sequence), or a sequence of them.
    indirect enum PostProcessorEntry: Codable {
        case byteLevel
        case sequence([PostProcessorEntry])
        /// The ids before and after the sequence; `bos` keeps the name for writing.
        case template(prefix: [Int32], suffix: [Int32], bos: String?)

        enum CodingKeys: String, CodingKey {
            case type, processors, single, pair
            case specialTokens = "special_tokens"
        }
        enum PieceKeys: String, CodingKey {
            case sequence = "Sequence"
            case specialToken = "SpecialToken"
        }
        enum IdKeys: String, CodingKey {
            case id, ids, tokens
            case typeId = "type_id"
        }

        init(from decoder: any Swift.Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let type = try c.decode(String.self, forKey: .type)
            switch type {
            case "ByteLevel": self = .byteLevel
            case "Sequence": self = .sequence(try c.decodeIfPresent([PostProcessorEntry].self, forKey: .processors) ?? [])
            case "TemplateProcessing":
                var single = try c.nestedUnkeyedContainer(forKey: .single)
                let specials = try? c.nestedContainer(keyedBy: JSONField.DataKey.self, forKey: .specialTokens)
                var prefix: [Int32] = [], suffix: [Int32] = []
                var seenSequence = false
                while !single.isAtEnd {
                    let index = single.currentIndex
                    let piece = try single.nestedContainer(keyedBy: PieceKeys.self)
                    if piece.contains(.sequence) {
                        seenSequence = true
                        continue
                    }
                    let name: String
                    do {
                        name = try piece.nestedContainer(keyedBy: IdKeys.self, forKey: .specialToken).decode(String.self, forKey: .id)
                    } catch {
                        throw FieldError.invalid(
                            single.codingPath + [JSONField.IndexKey(index)], "{\"Sequence\": ...} or {\"SpecialToken\": {\"id\": ...}}")
                    }
                    let key = JSONField.DataKey(stringValue: name)
                    guard let spec = try? specials?.nestedContainer(keyedBy: IdKeys.self, forKey: key),
                        let ids = try? spec.decode([Int32].self, forKey: .ids)
                    else {
                        throw FieldError.invalid(c.codingPath + [CodingKeys.specialTokens, key, IdKeys.ids], "a list of ids")
                    }
                    if seenSequence { suffix += ids } else { prefix += ids }
                }
                self = .template(prefix: prefix, suffix: suffix, bos: nil)
            default:
                throw FieldError.unsupported(
                    c.codingPath + [CodingKeys.type], "\"\(type)\"", "TemplateProcessing, ByteLevel, Sequence")
            }
        }

        /// Writes ByteLevel, a Sequence, or a TemplateProcessing that puts `bos` (one token, the
        /// only form this writer makes) before each sequence.
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            switch self {
            case .byteLevel: try c.encode("ByteLevel", forKey: .type)
            case .sequence(let ps):
                try c.encode("Sequence", forKey: .type)
                try c.encode(ps, forKey: .processors)
            case .template(let prefix, let suffix, let bos):
                precondition(prefix.count == 1 && suffix.isEmpty && bos != nil, "the writer makes a single-BOS template")
                let bos = bos!
                try c.encode("TemplateProcessing", forKey: .type)
                func special(_ a: inout any UnkeyedEncodingContainer, _ typeId: Int) throws {
                    var p = a.nestedContainer(keyedBy: PieceKeys.self)
                    var s = p.nestedContainer(keyedBy: IdKeys.self, forKey: .specialToken)
                    try s.encode(bos, forKey: .id)
                    try s.encode(typeId, forKey: .typeId)
                }
                func sequence(_ a: inout any UnkeyedEncodingContainer, _ id: String, _ typeId: Int) throws {
                    var p = a.nestedContainer(keyedBy: PieceKeys.self)
                    var s = p.nestedContainer(keyedBy: IdKeys.self, forKey: .sequence)
                    try s.encode(id, forKey: .id)
                    try s.encode(typeId, forKey: .typeId)
                }
                var single = c.nestedUnkeyedContainer(forKey: .single)
                try special(&single, 0)
                try sequence(&single, "A", 0)
                var pair = c.nestedUnkeyedContainer(forKey: .pair)
                try special(&pair, 0)
                try sequence(&pair, "A", 0)
                try special(&pair, 1)
                try sequence(&pair, "B", 1)
                var specials = c.nestedContainer(keyedBy: JSONField.DataKey.self, forKey: .specialTokens)
                var entry = specials.nestedContainer(keyedBy: IdKeys.self, forKey: JSONField.DataKey(stringValue: bos))
                try entry.encode(bos, forKey: .id)
                try entry.encode(prefix, forKey: .ids)
                try entry.encode([bos], forKey: .tokens)
            }
        }
    }

    /// `decoder`: only ByteLevel (the inverse of the byte-to-character map) is implemented.
    enum DecoderEntry: Codable {
        case byteLevel

        enum CodingKeys: String, CodingKey {
            case type
            case addPrefixSpace = "add_prefix_space"
            case trimOffsets = "trim_offsets"
            case useRegex = "use_regex"
        }

        init(from decoder: any Swift.Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let type = try c.decode(String.self, forKey: .type)
            guard type == "ByteLevel" else { throw FieldError.unsupported(c.codingPath + [CodingKeys.type], "\"\(type)\"", "ByteLevel") }
            self = .byteLevel
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode("ByteLevel", forKey: .type)
            try c.encode(true, forKey: .addPrefixSpace)
            try c.encode(true, forKey: .trimOffsets)
            try c.encode(true, forKey: .useRegex)
        }
    }

    /// `model`: byte-level BPE without dropout, subword prefixes or byte fallback.
    struct BPEModel: Codable {
        var vocab: [String: Int32]
        var merges: [(String, String)]
        var ignoreMerges: Bool

        enum CodingKeys: String, CodingKey {
            case type, dropout, vocab, merges
            case unkToken = "unk_token"
            case continuingSubwordPrefix = "continuing_subword_prefix"
            case endOfWordSuffix = "end_of_word_suffix"
            case fuseUnk = "fuse_unk"
            case byteFallback = "byte_fallback"
            case ignoreMerges = "ignore_merges"
        }

        init(vocab: [String: Int32], merges: [(String, String)]) {
            self.vocab = vocab
            self.merges = merges
            self.ignoreMerges = false
        }

        init(from decoder: any Swift.Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            func refuse(_ key: CodingKeys, _ value: String, _ supported: String) -> FieldError {
                FieldError.unsupported(c.codingPath + [key], value, supported)
            }
            let type = try c.decodeIfPresent(String.self, forKey: .type) ?? "BPE"
            guard type == "BPE" else { throw refuse(.type, "\"\(type)\"", "BPE (byte-level)") }
            if let d = try c.decodeIfPresent(Double.self, forKey: .dropout) { throw refuse(.dropout, "\(d)", "null") }
            for key in [CodingKeys.continuingSubwordPrefix, .endOfWordSuffix] {
                if let s = try c.decodeIfPresent(String.self, forKey: key) { throw refuse(key, "\"\(s)\"", "null") }
            }
            if try c.decodeIfPresent(Bool.self, forKey: .byteFallback) == true {
                throw refuse(.byteFallback, "true", "false (byte-level BPE)")
            }
            let v = try c.nestedContainer(keyedBy: JSONField.DataKey.self, forKey: .vocab)
            var vocab: [String: Int32] = [:]
            vocab.reserveCapacity(v.allKeys.count)
            for key in v.allKeys {
                let id = try v.decode(Int.self, forKey: key)
                guard id >= 0, id < Int(Int32.max) else { throw FieldError.invalid(v.codingPath + [key], "a non-negative integer id") }
                vocab[key.stringValue] = Int32(id)
            }
            self.vocab = vocab
            merges = try c.decode([Merge].self, forKey: .merges).map(\.pair)
            ignoreMerges = try c.decodeIfPresent(Bool.self, forKey: .ignoreMerges) ?? false
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode("BPE", forKey: .type)
            for key in [CodingKeys.dropout, .unkToken, .continuingSubwordPrefix, .endOfWordSuffix] { try c.encodeNil(forKey: key) }
            try c.encode(false, forKey: .fuseUnk)
            try c.encode(false, forKey: .byteFallback)
            try c.encode(ignoreMerges, forKey: .ignoreMerges)
            try c.encode(vocab, forKey: .vocab)
            try c.encode(merges.map { [$0.0, $0.1] }, forKey: .merges)
        }
    }

    /// One merge: `"left right"` (older files) or `["left", "right"]` (tokenizers >= 0.20).
    struct Merge: Decodable {
        var pair: (String, String)

        init(from decoder: any Swift.Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) {
                let parts = s.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw FieldError.invalid(c.codingPath, "\"left right\"") }
                pair = (String(parts[0]), String(parts[1]))
            } else if let p = try? c.decode([String].self), p.count == 2 {
                pair = (p[0], p[1])
            } else {
                throw FieldError.invalid(c.codingPath, "\"left right\" or [\"left\", \"right\"]")
            }
        }
    }
}

extension KeyedEncodingContainer {
    /// Encodes `value`, or an explicit `null` (the key present, as `tokenizers` writes it).
    fileprivate mutating func encodeOrNull<T: Encodable>(_ value: T?, forKey key: Key) throws {
        if let value { try encode(value, forKey: key) } else { try encodeNil(forKey: key) }
    }
}
