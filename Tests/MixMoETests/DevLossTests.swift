import Foundation
import Testing

@testable import MixMoE

/// The dev loss against closed forms and against each pair scored alone.
struct DevLossTests {
    func examples(_ m: DecoderModel) -> [MTExample] {
        // prompts and targets of different lengths, so batches pad
        let lens = [(3, 2), (5, 4), (2, 1), (7, 3), (4, 6), (6, 2)]
        return lens.enumerated().map { i, l in
            MTExample(
                prompt: (0..<l.0).map { Int32(($0 * 7 + i * 3) % 40 + 1) }, target: (0..<l.1).map { Int32(($0 * 5 + i) % 40 + 1) } + [2],
                direction: Direction("de", "en"))
        }
    }

    /// Logits all zero (LM head zeroed): every target token costs exactly ln V, and the tokens
    /// scored are every target token and EOS (closed form), whatever the batching.
    @Test(arguments: [16, 64, 4096])
    func uniformLogitsCostLnV(tokensPerBatch: Int) throws {
        let m = try DecoderModel.load(directory: modelFixture("llama_untied"))
        let head = m.store.w(m.lmHead.id)
        head.update(repeating: 0, count: m.config.vocabSize * m.config.hiddenSize)
        let ex = examples(m)
        let dev = DevLoss(examples: ex, pad: 2, tokensPerBatch: tokensPerBatch)
        #expect(dev.targetTokens == ex.reduce(0) { $0 + $1.target.count })
        #expect(abs(try dev.evaluate(m) - log(Double(m.config.vocabSize))) < 1e-6)
    }

    /// Padded batches give the mean of each pair scored alone (no padding), weighted by its
    /// target tokens.
    @Test func paddedBatchesEqualEachPairAlone() throws {
        let m = try DecoderModel.load(directory: modelFixture("llama_untied"))
        let ex = examples(m)
        var sum = 0.0, count = 0
        for e in ex {
            let b = MTDataset.collate([e], pad: 2)
            try m.setBatch(ids: b.ids, targets: b.targets, batch: 1, seq: b.seq)
            m.forward(batch: 1, seq: b.seq)
            let l = m.loss(batch: 1, seq: b.seq)
            sum += l.sum; count += l.count
        }
        let dev = DevLoss(examples: ex, pad: 2, tokensPerBatch: 40)
        #expect(dev.batches.count > 1 && dev.batches.contains { $0.batch > 1 })
        #expect(abs(try dev.evaluate(m) - sum / Double(count)) < 1e-5)
    }
}

/// `report dev-loss`'s table: the loss of every curve at every evaluated step (the union; "—"
/// where a curve was not evaluated) and each curve's lowest loss and step, read off by hand.
@Test func devLossComparisonTable() throws {
    let a = DevLossComparison.Curve(
        label: "lr 2e-3",
        points: [.init(label: "sft", step: 0, loss: 3.9), .init(label: "sft", step: 20, loss: 3.95), .init(label: "sft", step: 40, loss: 3.5)])
    let b = DevLossComparison.Curve(label: "lr 5e-4", points: [.init(label: "sft", step: 0, loss: 3.9), .init(label: "sft", step: 20, loss: 3.2)])
    let lines = DevLossComparison.markdown([a, b]).split(separator: "\n").map(String.init)
    #expect(lines[0] == "| step | lr 2e-3 | lr 5e-4 |")
    #expect(lines[2] == "| 0 | 3.9000 | 3.9000 |")
    #expect(lines[3] == "| 20 | 3.9500 | 3.2000 |")
    #expect(lines[4] == "| 40 | 3.5000 | — |")
    #expect(lines[5] == "| **lowest** | **3.5000** (step 40) | **3.2000** (step 20) |")
    let url = tempDir("devloss").appendingPathComponent("dev_loss.json")
    try Data("[{\"label\": \"sft\", \"step\": 3}]".utf8).write(to: url)
    #expect(throws: DataError.malformed(file: url.path, line: 0, expected: "a JSON array of {label, step, loss} (dev_loss.json)")) {
        try DevLossComparison.read(url)
    }
}

/// A two-stage run's dev_loss.json restarts its steps at each stage: `--stage` picks one stage's
/// points, and without it such a file is an error naming its stages (never a curve that mixes them).
@Test func devLossStageSelection() throws {
    let pts: [DevPoint] = [
        .init(label: "mix-moe stage 1", step: 0, loss: 4.2), .init(label: "mix-moe stage 1", step: 20, loss: 4.0),
        .init(label: "mix-moe stage 2", step: 0, loss: 4.1), .init(label: "mix-moe stage 2", step: 20, loss: 3.3),
    ]
    let s2 = try DevLossComparison.select(pts, stage: "mix-moe stage 2", file: "f.json")
    #expect(s2.map(\.loss) == [4.1, 3.3] && s2.map(\.step) == [0, 20])
    #expect(
        throws: SettingsError.invalid(
            option: "--stage", expected: "one of f.json's stages ('mix-moe stage 1', 'mix-moe stage 2'): a two-stage run needs --stage")
    ) {
        try DevLossComparison.select(pts, stage: nil, file: "f.json")
    }
    #expect(throws: SettingsError.invalid(option: "--stage", expected: "a stage of f.json (it has 'mix-moe stage 1', 'mix-moe stage 2')")) {
        try DevLossComparison.select(pts, stage: "sft", file: "f.json")
    }
    let one = Array(pts.prefix(2))
    #expect(try DevLossComparison.select(one, stage: nil, file: "f.json") == one)
}

/// Held-out exclusion against a hand-counted case: a pair goes when either side equals a held-out
/// segment of the same language; text in the other language does not count.
@Test func excludingDropsPairsSharingASegmentOfTheSameLanguage() {
    let train = Bitext(
        langA: "en", langB: "de",
        pairs: [("Open", "Öffnen"), ("Close", "Schließen"), ("Save", "Speichern"), ("Öffnen", "Open"), ("Quit", "Beenden")],
        source: "train")
    let held = [
        Bitext(langA: "en", langB: "de", pairs: [("Close file", "Schließen"), ("Save", "Sichern")], source: "test"),
        Bitext(langA: "en", langB: "fi", pairs: [("Quit", "Lopeta")], source: "test.fi"),
    ]
    let (kept, dropped) = train.excluding(held)
    // Close (German side held), Save (English side held), Quit (English side held via fi's test);
    // "Öffnen"/"Open" stays: the held-out "Open"s are not in German and vice versa
    #expect(dropped == 3)
    #expect(kept.pairs.map(\.a) == ["Open", "Öffnen"])
}
