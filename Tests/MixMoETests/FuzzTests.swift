import Foundation
import Testing

@testable import MixMoE

/// Seeded fuzzing of every reader: random and mutated inputs, at least 10,000 cases each. A reader
/// must either return a value or throw; a crash ends the test process and fails the run.
struct FuzzTests {
    static let cases = 10_000

    /// Random edits of `base`: byte flips, truncation, deletions, insertions, duplication.
    func mutate(_ base: [UInt8], _ rng: inout SplitMix64, alphabet: [UInt8]? = nil) -> [UInt8] {
        var b = base
        let ops = 1 + Int(rng.next() % 4)
        for _ in 0..<ops {
            guard !b.isEmpty else { b = [UInt8(rng.next() & 0xFF)]; continue }
            let i = Int(rng.next() % UInt64(b.count))
            func byte() -> UInt8 { alphabet.map { $0[Int(rng.next() % UInt64($0.count))] } ?? UInt8(rng.next() & 0xFF) }
            switch rng.next() % 6 {
            case 0: b[i] = byte()
            case 1: b[i] ^= UInt8(1 << (rng.next() % 8))
            case 2: b = Array(b.prefix(i))
            case 3: b.removeSubrange(i..<min(b.count, i + 1 + Int(rng.next() % 16)))
            case 4: b.insert(contentsOf: (0..<(1 + Int(rng.next() % 8))).map { _ in byte() }, at: i)
            default: b.insert(contentsOf: b[i..<min(b.count, i + 1 + Int(rng.next() % 32))], at: i)
            }
        }
        return b
    }

    func randomBytes(_ rng: inout SplitMix64, max: Int) -> [UInt8] {
        (0..<Int(rng.next() % UInt64(max))).map { _ in UInt8(rng.next() & 0xFF) }
    }

    @Test func safetensorsReader() throws {
        let a = FloatBuffer(randomFloats(12, seed: 1)), b = FloatBuffer(randomFloats(6, seed: 2))
        let base = [UInt8](
            try SafetensorsFile.serialize(
                [
                    (name: "a", shape: [3, 4], values: UnsafePointer(a.ptr)),
                    (name: "b.weight", shape: [6], values: UnsafePointer(b.ptr)),
                ],
                metadata: ["format": "pt"]))
        var rng = SplitMix64(seed: 42)
        var ok = 0, failed = 0
        for k in 0..<Self.cases {
            var bytes: [UInt8]
            switch k % 4 {
            case 0: bytes = randomBytes(&rng, max: 200)
            case 1:  // random body behind a plausible header length
                bytes = randomBytes(&rng, max: 120)
                let n = UInt64(rng.next() % 140)
                bytes = withUnsafeBytes(of: n.littleEndian) { Array($0) } + bytes
            case 2:  // header JSON edits with JSON-ish characters
                bytes = mutate(base, &rng, alphabet: Array("{}[]\":,0123456789-e.FBI ".utf8))
            default: bytes = mutate(base, &rng)
            }
            do {
                let f = try SafetensorsFile(data: Data(bytes), path: "fuzz.safetensors")
                for (name, info) in f.tensors {
                    let buf = FloatBuffer(count: info.shape.reduce(1, *))
                    f.read(name, into: buf.ptr)
                }
                ok += 1
            } catch is ModelError { failed += 1 }
        }
        // Any other error type, or a crash, fails the test by itself; this checks that the fuzzer
        // reached both sides of the reader (inputs it accepts and inputs it rejects).
        #expect(ok > 0 && failed > 0, "accepted \(ok), rejected \(failed) of \(Self.cases)")
        #expect(failed > Self.cases / 2, "most mutations must be rejected (ok \(ok), rejected \(failed))")
    }

    @Test func tokenizerJSONReader() throws {
        let t = BPETrainer(vocabSize: 300, specialTokens: ["<s>", "</s>"])
        var counts: [String: Int] = [:]
        for _ in 0..<3 { t.countWords("the cat sat on the mat, Grüße 123", into: &counts) }
        let r = try t.train(wordCounts: counts)
        let url = tempDir("fuzztok").appendingPathComponent("tokenizer.json")
        try BPETokenizer.writeJSON(vocab: r.vocab, merges: r.merges, added: r.added, pattern: .llama3, bos: "<s>", to: url)
        let base = [UInt8](try Data(contentsOf: url))
        let root = try JSONSerialization.jsonObject(with: Data(base)) as! [String: Any]
        var rng = SplitMix64(seed: 7)
        var ok = 0, failed = 0
        let odd: [Any] = [NSNull(), -1, 2_147_483_647, 1e300, "x", [1, 2], ["a": 1], true, "", [String](), ["a b"], [["a"]]]
        for k in 0..<Self.cases {
            var data: Data
            if k % 2 == 0 {
                data = Data(mutate(base, &rng, alphabet: k % 4 == 0 ? Array("{}[]\":,0123456789 abĠ".utf8) : nil))
            } else {  // structured: replace or delete a field at depth 1 or 2
                var obj = root
                let keys = Array(obj.keys).sorted()
                let key = keys[Int(rng.next() % UInt64(keys.count))]
                if var inner = obj[key] as? [String: Any], !inner.isEmpty, rng.next() % 2 == 0 {
                    let ik = Array(inner.keys).sorted()[Int(rng.next() % UInt64(inner.count))]
                    inner[ik] = rng.next() % 5 == 0 ? nil : odd[Int(rng.next() % UInt64(odd.count))]
                    obj[key] = inner
                } else {
                    obj[key] = rng.next() % 5 == 0 ? nil : odd[Int(rng.next() % UInt64(odd.count))]
                }
                data = (try? JSONSerialization.data(withJSONObject: obj)) ?? Data()
            }
            do {
                let tok = try BPETokenizer.parse(data, file: "fuzz.json")
                let ids = tok.encode("the cat <s> Grüße 12", addSpecialTokens: true)
                _ = tok.decode(ids + [Int32(tok.vocabSize + 5), -3])
                ok += 1
            } catch is TokenizerError { failed += 1 }
        }
        // Any other error type, or a crash, fails the test by itself; this checks that the fuzzer
        // reached both sides of the reader (inputs it accepts and inputs it rejects).
        #expect(ok > 0 && failed > 0, "accepted \(ok), rejected \(failed) of \(Self.cases)")
        #expect(failed > 1000, "mutations must be rejected (ok \(ok), rejected \(failed))")
    }

    @Test(arguments: ["tsv", "jsonl", "json"])
    func corpusReaders(format: String) throws {
        let dir = tempDir("fuzzcorpus")
        let base: String
        switch format {
        case "tsv": base = "Hello world\tHallo Welt\nOpen file\tDatei öffnen\n"
        case "jsonl": base = #"{"translation": {"de": "Hallo", "en": "Hello"}}"# + "\n" + #"{"translation": {"de": "Welt", "en": "World"}}"# + "\n"
        default: base = #"[{"translation": {"de": "Hallo", "en": "Hello"}}, {"translation": {"en": "World", "de": "Welt"}}]"#
        }
        var rng = SplitMix64(seed: 99)
        var ok = 0, failed = 0
        let url = dir.appendingPathComponent("fuzz.de-en.\(format)")
        for k in 0..<Self.cases {
            let bytes = k % 3 == 0 ? randomBytes(&rng, max: 64) : mutate(Array(base.utf8), &rng, alphabet: k % 3 == 1 ? Array("\t\n{}[]\":, deen".utf8) : nil)
            try Data(bytes).write(to: url)
            do {
                let b = try Corpus.readBitext(url.path)
                #expect(!b.pairs.isEmpty)
                ok += 1
            } catch is DataError { failed += 1 }
        }
        // Any other error type, or a crash, fails the test by itself; this checks that the fuzzer
        // reached both sides of the reader (inputs it accepts and inputs it rejects).
        #expect(ok > 0 && failed > 0, "accepted \(ok), rejected \(failed) of \(Self.cases)")
    }
}
