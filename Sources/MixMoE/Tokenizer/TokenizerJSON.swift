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
        let f: TokenizerFile
        do {
            f = try JSONDecoder().decode(TokenizerFile.self, from: data)
        } catch let e as TokenizerFile.FieldError {
            let field = JSONField.path(e.path)
            switch e.kind {
            case .invalid(let expected): throw TokenizerError.invalid(file: file, field: field, expected: expected)
            case .unsupported(let v, let s): throw TokenizerError.unsupported(file: file, field: field, value: v, supported: s)
            }
        } catch let e as DecodingError {
            throw TokenizerError.invalid(file: file, field: e.fieldPath, expected: e.expectation)
        }

        var nfc = false
        func normalizer(_ n: TokenizerFile.NormalizerEntry) {
            switch n {
            case .nfc: nfc = true
            case .sequence(let ns): ns.forEach(normalizer)
            }
        }
        f.normalizer.map(normalizer)

        // Split(regex, Isolated) + ByteLevel(use_regex false), or ByteLevel(use_regex true)
        var pattern: SplitPattern? = nil
        var byteLevel = false, prefixSpace = false
        func pre(_ p: TokenizerFile.PreTokenizerEntry, _ path: String) throws {
            switch p {
            case .sequence(let ps):
                for (i, x) in ps.enumerated() { try pre(x, "\(path).pretokenizers[\(i)]") }
            case .split(let sp): pattern = sp
            case .byteLevel(let addPrefixSpace, let useRegex):
                byteLevel = true
                prefixSpace = addPrefixSpace
                if useRegex {
                    guard pattern == nil else {
                        throw TokenizerError.unsupported(file: file, field: "\(path).use_regex", value: "true after a Split", supported: "false")
                    }
                    pattern = .gpt2
                }
            }
        }
        guard let p = f.preTokenizer else { throw TokenizerError.invalid(file: file, field: "pre_tokenizer", expected: "an object with 'type'") }
        try pre(p, "pre_tokenizer")
        guard byteLevel, let pattern else {
            throw TokenizerError.unsupported(
                file: file, field: "pre_tokenizer", value: "without ByteLevel and a split pattern",
                supported: "byte-level BPE (ByteLevel [+ Split])")
        }

        // BOS/EOS of a single sequence
        var prefix: [Int32] = [], suffix: [Int32] = []
        func post(_ p: TokenizerFile.PostProcessorEntry) {
            switch p {
            case .byteLevel: return
            case .sequence(let ps): ps.forEach(post)
            case .template(let before, let after, _):
                prefix += before
                suffix += after
            }
        }
        f.postProcessor.map(post)

        let t = try BPETokenizer(
            vocab: f.model.vocab, mergeList: f.model.merges, added: f.addedTokens.map(\.token), pattern: pattern,
            addPrefixSpace: prefixSpace, nfc: nfc, ignoreMerges: f.model.ignoreMerges,
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
        let post = bos.flatMap { bos in added.first(where: { $0.content == bos }) }.map {
            TokenizerFile.PostProcessorEntry.template(prefix: [$0.id], suffix: [], bos: $0.content)
        }
        let file = TokenizerFile(
            addedTokens: added.map(TokenizerFile.AddedTokenEntry.init),
            preTokenizer: .sequence([.split(pattern), .byteLevel(addPrefixSpace: false, useRegex: false)]),
            postProcessor: post, model: TokenizerFile.BPEModel(vocab: vocab, merges: merges))
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        try AtomicFile.write(try enc.encode(file), to: url)
    }
}
