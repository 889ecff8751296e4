import Foundation
import Testing

@testable import MixMoE

/// Incremental decoding and streamed text against the whole decode (`BPETokenizer.decode`,
/// itself checked against HF tokenizers): the pieces, concatenated, must be exactly the text of
/// all the ids, whatever the ids split (CJK and emoji split into byte tokens, random ids making
/// invalid UTF-8).
@Suite struct TextStreamTests {
    static let tok = Result { try BPETokenizer.load(fixtures.appendingPathComponent("tokenizers/llama3.json")) }

    /// Id sequences: encodings of multilingual text (characters split across tokens) with random
    /// ids spliced in (invalid UTF-8 in every position).
    static func sequences(_ tok: BPETokenizer, count: Int) -> [[Int32]] {
        let texts = [
            "日本語のテキスト 😀🎉 Привет, мир! Ünïcödé ε≈λ", "中文翻译测试，好的。", "Hello\nworld\n\nStop here ### not",
            "🇩🇪🇨🇿 fahnen ✓ €100", "e\u{301}a\u{300} combining",
        ]
        var rng = SplitMix64(seed: 11)
        var out: [[Int32]] = []
        for i in 0..<count {
            var ids = tok.encode(texts[i % texts.count])
            for _ in 0..<(i % 4) {
                let at = Int(rng.next() % UInt64(ids.count + 1))
                ids.insert(Int32(rng.next() % UInt64(tok.vocabSize)), at: at)
            }
            // single byte tokens: cut a multi-byte character in odd places
            if i % 3 == 0, let b = tok.encode("é").first { ids.append(b) }
            out.append(ids)
        }
        return out
    }

    @Test func incrementalDecodeEqualsTheWholeDecode() throws {
        let tok = try Self.tok.get()
        for ids in Self.sequences(tok, count: 300) {
            var d = IncrementalDecoder(tok)
            var text = ""
            for id in ids { text += d.add(id) }
            text += d.finish()
            #expect(text == tok.decode(ids), "\(ids)")
        }
    }

    /// Byte by byte: every prefix of a 4-byte character is held, an impossible continuation is
    /// not (the whole decode replaces it at once).
    @Test(arguments: [
        ([0xF0, 0x9F, 0x98], 3), ([0xF0, 0x9F], 2), ([0xE4, 0xB8], 2), ([0x41, 0xC3], 1), ([0xE0, 0x80], 0),
        ([0xED, 0xA0], 0), ([0xF4, 0x90], 0), ([0xF5], 0), ([0x80], 0), ([0xC3, 0xA9], 0), ([0xF0, 0x9F, 0x98, 0x80], 0),
    ])
    func incompleteTailIsTheValidPrefixOfACharacter(bytes: [Int], held: Int) {
        #expect(IncrementalDecoder.incompleteTail(bytes.map { UInt8($0) }) == held)
    }

    /// The streamed deltas are the whole decode of the non-EOS ids, cut before the first stop
    /// string; `stopped` says whether one appeared.
    @Test(arguments: [[String](), ["\n"], ["###", "\n\n"], ["中文"], ["zzz-never"]])
    func streamedTextIsTheWholeDecodeCutAtTheFirstStop(stops: [String]) throws {
        let tok = try Self.tok.get()
        let eos: Set<Int32> = [Int32(tok.vocabSize - 1)]
        for ids0 in Self.sequences(tok, count: 120) {
            let ids = ids0 + [Int32(tok.vocabSize - 1)] + tok.encode(" after eos")
            let s = TextStream(tokenizer: tok, eos: eos, stops: stops)
            var text = "", stopped = false
            for id in ids {
                let (d, st) = s.add(id)
                text += d
                if st { stopped = true; break }
            }
            if !stopped { text += s.flush() }
            let whole = tok.decode(ids.filter { !eos.contains($0) })
            let cut = stops.compactMap { whole.range(of: $0)?.lowerBound }.min()
            #expect(text == (cut.map { String(whole[..<$0]) } ?? whole), "stops \(stops), ids \(ids)")
            #expect(stopped == (cut != nil))
        }
    }
}
