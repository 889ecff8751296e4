extension ModelConfig {
    /// Parameters that take part in matrix multiplications per token: attention and FFN
    /// projections plus the LM head (the embedding lookup is not a matmul).
    public var matmulParameters: Int {
        let d = hiddenSize, qd = numAttentionHeads * headDim, kd = numKeyValueHeads * headDim
        let perLayer = d * qd * 2 + d * kd * 2 + 3 * d * intermediateSize
        return numHiddenLayers * perLayer + vocabSize * d
    }

    /// Training FLOPs per token (forward + backward) at context `seq`: `6 * matmul params` plus
    /// attention's `12 * layers * heads * head_dim * seq` (QK^T and PV, full T x T as computed).
    public func trainFlopsPerToken(seq: Int) -> Double {
        6 * Double(matmulParameters) + 12 * Double(numHiddenLayers * numAttentionHeads * headDim * seq)
    }

    /// Forward-only FLOPs per token.
    public func forwardFlopsPerToken(seq: Int) -> Double { trainFlopsPerToken(seq: seq) / 3 }
}
