import Foundation

/// The training data of one Mix-MoE stage read from users' files: packed monolingual text for
/// stage 1, translation pairs in ALMA's prompt for stage 2, plus up to 32 examples of each
/// direction on which expert use is recorded after training (the paper's Fig. 2).
public struct StageData {
    public let source: BatchSource
    public let summary: String
    let model: DecoderModel
    let probes: [(label: String, batch: TokenBatch)]

    public static func load(
        stage: Int, files: [String], tokenizer tok: BPETokenizer, model m: DecoderModel, seq: Int, seed: UInt64,
        directions: Set<Direction>?, exclude: [String] = [], perPair: PairDirections = .both
    ) throws -> StageData {
        let eos = try m.config.trainingEOS()
        if stage == 1 {
            let stream = try PackedDataset.tokenize(files: files.map { URL(fileURLWithPath: $0) }, tokenizer: tok, eos: eos)
            let packed = PackedDataset(tokens: stream, seq: seq, seed: seed)
            guard packed.windowCount > 0 else { throw DataError.empty(files.joined(separator: ", ")) }
            return StageData(source: packed, summary: "stage 1 data: \(stream.count) tokens in \(packed.windowCount) windows", model: m, probes: [])
        }
        var bitexts = try files.map { try Corpus.readBitext($0) }
        var held = ""
        if !exclude.isEmpty {
            let heldOut = try exclude.map { try Corpus.readBitext($0) }
            var removed = 0
            bitexts = bitexts.map { b in
                let (kept, n) = b.excluding(heldOut)
                removed += n
                return kept
            }
            held = "; \(removed) training pairs sharing a segment with \(exclude.count) held-out file(s) dropped"
        }
        let (exs, dropped) = MTDataset.build(
            bitexts: bitexts, directions: directions, tokenizer: tok, eos: eos, maxTokens: seq, perPair: perPair, seed: seed)
        guard !exs.isEmpty else { throw DataError.empty(files.joined(separator: ", ")) }
        let byDir = Dictionary(grouping: exs, by: { $0.direction.description })
        let probes = byDir.sorted { $0.key < $1.key }.map { ($0.key, MTDataset.collate(Array($0.value.prefix(32)), pad: eos)) }
        return StageData(
            source: MTDataset(examples: exs, seed: seed, pad: eos),
            summary: "stage 2 data: \(exs.count) examples in \(byDir.count) directions (\(dropped) longer than --seq \(seq) dropped\(held))",
            model: m, probes: probes)
    }

    /// Expert use per direction: a forward pass over each direction's probe examples.
    /// The probes run in pieces of at most `maxTokens` tokens (the training micro-batch), so they
    /// need no more activation memory than training did.
    public func recordExpertUse(_ trainer: Trainer, maxTokens: Int) throws {
        for (label, batch) in probes {
            model.moe.statsLabel = label
            _ = try trainer.evaluate(batch.split(maxTokens: maxTokens))
        }
    }
}
