import Foundation

extension BPETokenizer {
    /// Loads a Hugging Face `tokenizer.json`.
    public static func load(_ url: URL) throws -> BPETokenizer {
        guard let data = try? Data(contentsOf: url) else { throw TokenizerError.missingFile(url.path) }
        return try parse(data, file: url.path)
    }

    /// The tokenizer.json bytes a tokenizer was loaded from (kept for copying next to models).
    public static func json(_ t: BPETokenizer) -> Data { t.sourceJSON }

    public static func parse(_ data: Data, file: String) throws -> BPETokenizer {
        func invalid(_ f: String, _ e: String) -> TokenizerError { .invalid(file: file, field: f, expected: e) }
        func unsupported(_ f: String, _ v: String, _ s: String) -> TokenizerError {
            .unsupported(file: file, field: f, value: v, supported: s)
        }
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw invalid("(top level)", "a JSON object")
        }
        // model
        guard let model = root["model"] as? [String: Any] else { throw invalid("model", "an object") }
        let type = model["type"] as? String ?? "BPE"
        guard type == "BPE" else { throw unsupported("model.type", "\"\(type)\"", "BPE (byte-level)") }
        for key in ["dropout", "continuing_subword_prefix", "end_of_word_suffix"] where !(model[key] == nil || model[key] is NSNull) {
            throw unsupported("model.\(key)", "\(model[key]!)", "null")
        }
        if model["byte_fallback"] as? Bool == true { throw unsupported("model.byte_fallback", "true", "false (byte-level BPE)") }
        guard let vocabAny = model["vocab"] as? [String: Any] else { throw invalid("model.vocab", "an object of token -> id") }
        var vocab: [String: Int32] = [:]
        vocab.reserveCapacity(vocabAny.count)
        for (t, v) in vocabAny {
            guard let id = v as? Int, id >= 0, id < Int(Int32.max) else { throw invalid("model.vocab[\"\(t)\"]", "a non-negative integer id") }
            vocab[t] = Int32(id)
        }
        guard let mergesAny = model["merges"] as? [Any] else { throw invalid("model.merges", "a list") }
        var merges: [(String, String)] = []
        merges.reserveCapacity(mergesAny.count)
        for (i, m) in mergesAny.enumerated() {
            if let s = m as? String {  // "a b"
                let parts = s.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw invalid("model.merges[\(i)]", "\"left right\"") }
                merges.append((String(parts[0]), String(parts[1])))
            } else if let p = m as? [Any], p.count == 2, let a = p[0] as? String, let b = p[1] as? String {
                merges.append((a, b))
            } else {
                throw invalid("model.merges[\(i)]", "\"left right\" or [\"left\", \"right\"]")
            }
        }
        let ignoreMerges = model["ignore_merges"] as? Bool ?? false

        // added tokens
        var added: [AddedToken] = []
        for (i, a) in (root["added_tokens"] as? [Any] ?? []).enumerated() {
            guard let o = a as? [String: Any], let id = o["id"] as? Int, id >= 0, let content = o["content"] as? String else {
                throw invalid("added_tokens[\(i)]", "an object with integer 'id' and string 'content'")
            }
            added.append(
                AddedToken(
                    id: Int32(id), content: content, special: o["special"] as? Bool ?? false,
                    lstrip: o["lstrip"] as? Bool ?? false, rstrip: o["rstrip"] as? Bool ?? false,
                    singleWord: o["single_word"] as? Bool ?? false))
        }

        // normalizer
        var nfc = false
        func normalizer(_ n: Any?, _ path: String) throws {
            guard let n, !(n is NSNull) else { return }
            guard let o = n as? [String: Any], let t = o["type"] as? String else { throw invalid(path, "an object with 'type'") }
            switch t {
            case "NFC": nfc = true
            case "Sequence":
                for (i, x) in (o["normalizers"] as? [Any] ?? []).enumerated() { try normalizer(x, "\(path).normalizers[\(i)]") }
            default: throw unsupported("\(path).type", "\"\(t)\"", "null, NFC, Sequence")
            }
        }
        try normalizer(root["normalizer"], "normalizer")

        // pre-tokenizer: Split(regex, Isolated) + ByteLevel(use_regex false), or ByteLevel(use_regex true)
        var pattern: SplitPattern? = nil
        var byteLevel = false, prefixSpace = false
        func pre(_ p: Any?, _ path: String) throws {
            guard let o = p as? [String: Any], let t = o["type"] as? String else { throw invalid(path, "an object with 'type'") }
            switch t {
            case "Sequence":
                for (i, x) in (o["pretokenizers"] as? [Any] ?? []).enumerated() { try pre(x, "\(path).pretokenizers[\(i)]") }
            case "Split":
                guard let pat = o["pattern"] as? [String: Any], let rx = pat["Regex"] as? String else {
                    throw unsupported("\(path).pattern", "non-regex", "{\"Regex\": <GPT-2, Llama-3 or Qwen2 pattern>}")
                }
                guard let sp = SplitPattern(regex: rx) else {
                    throw unsupported("\(path).pattern.Regex", rx, "the GPT-2, Llama-3 and Qwen2 patterns")
                }
                guard (o["behavior"] as? String) == "Isolated", (o["invert"] as? Bool) != true else {
                    throw unsupported("\(path).behavior", "\(o["behavior"] ?? "nil")", "Isolated, invert false")
                }
                pattern = sp
            case "ByteLevel":
                byteLevel = true
                prefixSpace = o["add_prefix_space"] as? Bool ?? false
                if o["use_regex"] as? Bool ?? true {
                    guard pattern == nil else { throw unsupported("\(path).use_regex", "true after a Split", "false") }
                    pattern = .gpt2
                }
            default: throw unsupported("\(path).type", "\"\(t)\"", "ByteLevel, Split, Sequence")
            }
        }
        try pre(root["pre_tokenizer"], "pre_tokenizer")
        guard byteLevel, let pattern else {
            throw unsupported("pre_tokenizer", "without ByteLevel and a split pattern", "byte-level BPE (ByteLevel [+ Split])")
        }

        // decoder
        if let d = root["decoder"], !(d is NSNull) {
            guard let o = d as? [String: Any], let t = o["type"] as? String, t == "ByteLevel" else {
                throw unsupported("decoder.type", "\((d as? [String: Any])?["type"] ?? "?")", "ByteLevel")
            }
        }

        // post-processor: BOS/EOS of a single sequence
        var prefix: [Int32] = [], suffix: [Int32] = []
        func post(_ p: Any?, _ path: String) throws {
            guard let p, !(p is NSNull) else { return }
            guard let o = p as? [String: Any], let t = o["type"] as? String else { throw invalid(path, "an object with 'type'") }
            switch t {
            case "ByteLevel": return
            case "Sequence":
                for (i, x) in (o["processors"] as? [Any] ?? []).enumerated() { try post(x, "\(path).processors[\(i)]") }
            case "TemplateProcessing":
                guard let single = o["single"] as? [Any] else { throw invalid("\(path).single", "a list") }
                let specials = o["special_tokens"] as? [String: Any] ?? [:]
                var seenSeq = false
                for (i, item) in single.enumerated() {
                    guard let it = item as? [String: Any] else { throw invalid("\(path).single[\(i)]", "an object") }
                    if it["Sequence"] != nil { seenSeq = true; continue }
                    guard let st = it["SpecialToken"] as? [String: Any], let name = st["id"] as? String else {
                        throw invalid("\(path).single[\(i)]", "{\"Sequence\": ...} or {\"SpecialToken\": {\"id\": ...}}")
                    }
                    guard let spec = specials[name] as? [String: Any], let ids = spec["ids"] as? [Int] else {
                        throw invalid("\(path).special_tokens.\(name).ids", "a list of ids")
                    }
                    if seenSeq { suffix += ids.map(Int32.init) } else { prefix += ids.map(Int32.init) }
                }
            default: throw unsupported("\(path).type", "\"\(t)\"", "TemplateProcessing, ByteLevel, Sequence")
            }
        }
        try post(root["post_processor"], "post_processor")

        let t = try BPETokenizer(
            vocab: vocab, mergeList: merges, added: added, pattern: pattern,
            addPrefixSpace: prefixSpace, nfc: nfc, ignoreMerges: ignoreMerges,
            prefixIds: prefix, suffixIds: suffix, file: file)
        t.sourceJSON = data
        return t
    }

    /// Writes a `tokenizer.json` that Hugging Face `tokenizers` loads: Split(pattern) + ByteLevel,
    /// BPE with merges as pairs, TemplateProcessing adding `bos` when given, ByteLevel decoder.
    public static func writeJSON(
        vocab: [String: Int32], merges: [(String, String)], added: [AddedToken],
        pattern: SplitPattern, bos: String?, to url: URL
    ) throws {
        let addedJSON: [[String: Any]] = added.map {
            [
                "id": Int($0.id), "content": $0.content, "single_word": $0.singleWord, "lstrip": $0.lstrip,
                "rstrip": $0.rstrip, "normalized": false, "special": $0.special,
            ]
        }
        var post: Any = NSNull()
        if let bos, let t = added.first(where: { $0.content == bos }) {
            post =
                [
                    "type": "TemplateProcessing",
                    "single": [["SpecialToken": ["id": bos, "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]]],
                    "pair": [
                        ["SpecialToken": ["id": bos, "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]],
                        ["SpecialToken": ["id": bos, "type_id": 1]], ["Sequence": ["id": "B", "type_id": 1]],
                    ],
                    "special_tokens": [bos: ["id": bos, "ids": [Int(t.id)], "tokens": [bos]]],
                ] as [String: Any]
        }
        let root: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(),
            "added_tokens": addedJSON,
            "normalizer": NSNull(),
            "pre_tokenizer": [
                "type": "Sequence",
                "pretokenizers": [
                    ["type": "Split", "pattern": ["Regex": pattern.regex], "behavior": "Isolated", "invert": false],
                    ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false],
                ],
            ] as [String: Any],
            "post_processor": post,
            "decoder": ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true],
            "model": [
                "type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": NSNull(),
                "end_of_word_suffix": NSNull(), "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                "vocab": vocab.mapValues { Int($0) }, "merges": merges.map { [$0.0, $0.1] },
            ] as [String: Any],
        ]
        let data = try JSONSerialization.data(withJSONObject: root, options: [.sortedKeys])
        try AtomicFile.write(data, to: url)
    }
}
