import Foundation
import Testing

@testable import MixMoE

/// Ids identical to Hugging Face `tokenizers` (fixtures from scripts/fixtures/make_tokenizer_fixtures.py):
/// multilingual text, digits, emoji and astral characters, whitespace runs, apostrophes, added tokens.
struct TokenizerTests {
    struct Case: Decodable { let text: String; let ids: [Int32]; let ids_special: [Int32]; let decoded: String }

    func load(_ kind: String) throws -> (BPETokenizer, [Case]) {
        let dir = fixtures.appendingPathComponent("tokenizers")
        let tok = try BPETokenizer.load(dir.appendingPathComponent("\(kind).json"))
        let cases = try JSONDecoder().decode([Case].self, from: Data(contentsOf: dir.appendingPathComponent("\(kind).expected.json")))
        return (tok, cases)
    }

    @Test(arguments: ["gpt2", "llama3", "qwen2"])
    func idsMatchHuggingFace(_ kind: String) throws {
        let (tok, cases) = try load(kind)
        #expect(cases.count > 300)
        var failures = 0
        for c in cases {
            let ids = tok.encode(c.text)
            if ids != c.ids {
                failures += 1
                if failures <= 5 { Issue.record("\(kind): \(c.text.debugDescription)\n ours \(ids)\n   hf \(c.ids)") }
            }
            #expect(tok.encode(c.text, addSpecialTokens: true) == c.ids_special, "\(kind) special: \(c.text.debugDescription)")
        }
        #expect(failures == 0, "\(kind): \(failures) of \(cases.count) lines differ")
    }

    @Test(arguments: ["gpt2", "llama3", "qwen2"])
    func decodeMatchesHuggingFaceAndRoundTrips(_ kind: String) throws {
        let (tok, cases) = try load(kind)
        for c in cases {
            #expect(tok.decode(c.ids) == c.decoded, "\(kind) decode: \(c.text.debugDescription)")
            // NFC normalisation (qwen2) changes the text itself; compare with its NFC form there.
            let expected = tok.nfc ? c.text.precomposedStringWithCanonicalMapping : c.text
            #expect(tok.decode(tok.encode(c.text)) == expected, "\(kind) round trip: \(c.text.debugDescription)")
        }
    }

    /// Every pattern's split covers the input exactly (no scalar lost or repeated).
    @Test(arguments: SplitPattern.allCases)
    func splitCoversInput(_ p: SplitPattern) throws {
        let (_, cases) = try load("llama3")
        for c in cases {
            let s = Array(c.text.unicodeScalars)
            let pieces = p.split(s)
            #expect(pieces.map(\.count).reduce(0, +) == s.count)
            #expect(zip(pieces, pieces.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
        }
    }

    @Test(arguments: [
        (#"{"model": {"type": "WordPiece", "vocab": {}}}"#, "model.type"),
        (#"{"model": {"type": "BPE", "vocab": {}, "merges": []}, "pre_tokenizer": {"type": "Whitespace"}}"#, "pre_tokenizer.type"),
        (#"{"model": {"type": "BPE", "vocab": {}, "merges": []}, "normalizer": {"type": "Lowercase"}}"#, "normalizer.type"),
        (
            #"{"model": {"type": "BPE", "vocab": {}, "merges": []}, "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "\\w+"}, "behavior": "Isolated"}}"#,
            "pre_tokenizer.pattern.Regex"
        ),
        (#"{"model": {"type": "BPE", "vocab": {"a": "x"}, "merges": []}}"#, "model.vocab[\"a\"]"),
        (#"{"model": {"type": "BPE", "vocab": {"a": -1}, "merges": []}}"#, "model.vocab[\"a\"]"),
        (#"[1, 2]"#, "(top level)"),
        (#"{"model": {"type": "BPE", "vocab": {}, "merges": ["a b", "ab"]}}"#, "model.merges[1]"),
        (#"{"model": {"type": "BPE", "vocab": {}, "merges": [], "dropout": 0.1}}"#, "model.dropout"),
        (#"{"added_tokens": [{"id": 0, "content": "<s>"}, {"id": -2, "content": "x"}], "model": {"vocab": {}, "merges": []}}"#, "added_tokens[1].id"),
        (
            #"{"model": {"vocab": {}, "merges": []}, "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "ByteLevel"}, {"type": "Punctuation"}]}}"#,
            "pre_tokenizer.pretokenizers[1].type"
        ),
        (
            #"{"model": {"vocab": {}, "merges": []}, "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"}, "behavior": "Isolated"}, {"type": "ByteLevel"}]}}"#,
            "pre_tokenizer.pretokenizers[1].use_regex"
        ),
        (
            #"{"model": {"vocab": {}, "merges": []}, "pre_tokenizer": {"type": "ByteLevel"}, "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>"}}], "special_tokens": {}}}"#,
            "post_processor.special_tokens[\"<s>\"].ids"
        ),
        (#"{"model": {"vocab": {}, "merges": []}, "pre_tokenizer": {"type": "ByteLevel"}, "decoder": {"type": "WordPiece"}}"#, "decoder.type"),
    ])
    func unsupportedComponentsAreNamed(json: String, field: String) {
        do {
            _ = try BPETokenizer.parse(Data(json.utf8), file: "t.json")
            Issue.record("expected an error for \(field)")
        } catch let e as TokenizerError {
            switch e {
            case .invalid(let f, let fl, _), .unsupported(let f, let fl, _, _):
                #expect(f == "t.json")
                #expect(fl == field)
            default: Issue.record("unexpected \(e)")
            }
        } catch { Issue.record("unexpected \(error)") }
    }
}

/// The trainer against merges worked out by hand.
struct BPETrainerTests {
    /// Words "ab" x5, "abc" x3, "bc" x1 (gpt2 split, no spaces): pair counts (a,b)=8, (b,c)=4 ->
    /// merge a+b; then (ab,c)=3, (b,c)=1 -> merge ab+c; then only count-1 pairs remain.
    @Test func mergesByHand() throws {
        var t = BPETrainer(vocabSize: 1 + 256 + 10, specialTokens: ["<s>"], pattern: .gpt2)
        t.minFrequency = 2
        let r = try t.train(wordCounts: ["ab": 5, "abc": 3, "bc": 1])
        #expect(r.merges.map { "\($0.0) \($0.1)" } == ["a b", "ab c"])
        #expect(r.vocab.count == 1 + 256 + 2)
        #expect(r.vocab["<s>"] == 0 && r.vocab["abc"] == 258)
    }

    /// A trained tokenizer written to tokenizer.json reloads and encodes its training words to the
    /// merged tokens, and decodes back to the text.
    @Test func writtenTokenizerReloads() throws {
        let t = BPETrainer(vocabSize: 300, specialTokens: ["<|begin_of_text|>", "<|end_of_text|>"])
        var counts: [String: Int] = [:]
        for line in ["the cat sat on the mat", "the dog sat on the log", "Grüße, 世界! 123 4567"] {
            for _ in 0..<3 { t.countWords(Substring(line), into: &counts) }
        }
        let r = try t.train(wordCounts: counts)
        let url = tempDir("tok").appendingPathComponent("tokenizer.json")
        try BPETokenizer.writeJSON(
            vocab: r.vocab, merges: r.merges, added: r.added, pattern: .llama3,
            bos: "<|begin_of_text|>", to: url)
        let tok = try BPETokenizer.load(url)
        #expect(tok.encode(" the") == [r.vocab[ByteLevel.encode(" the".utf8)]!])
        let text = "the cat sat on the log <|end_of_text|> Grüße 世界"
        let ids = tok.encode(text, addSpecialTokens: true)
        #expect(ids.first == 0)
        #expect(ids.contains(1))
        #expect(tok.decode(Array(ids.dropFirst())) == text)
    }
}
