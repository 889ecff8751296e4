import Foundation

/// The files besides config.json and the weights that make a model directory complete for the
/// Hugging Face ecosystem: `AutoTokenizer` finds its BOS, EOS and PAD tokens in
/// `tokenizer_config.json`, `generate` its stop and pad ids in `generation_config.json`, and
/// converters such as CTranslate2's `ct2-transformers-converter` read both. Every command that
/// writes a model directory writes its tokenizer through ``writeTokenizer(_:to:)``.
public enum HFDirectory {
    /// Writes `tokenizer.json` (these bytes), then `tokenizer_config.json` and
    /// `generation_config.json` for it and the directory's config.json (written first).
    public static func writeTokenizer(_ json: Data, to dir: URL) throws {
        let url = ModelDirectory(dir).tokenizer
        try AtomicFile.write(json, to: url)
        let tok = try BPETokenizer.load(url)
        let config = try ModelConfig.load(ModelDirectory(dir).config)
        try AtomicFile.writeJSON(tokenizerConfig(tok, config), to: ModelDirectory(dir).tokenizerConfig)
        try AtomicFile.writeJSON(generationConfig(tok, config), to: ModelDirectory(dir).generationConfig)
    }

    /// Copies `src`'s tokenizer.json into `dst` with ``writeTokenizer(_:to:)`` (nothing when `src`
    /// has none).
    public static func copyTokenizer(from src: URL, to dst: URL) throws {
        let t = ModelDirectory(src).tokenizer
        guard FileManager.default.fileExists(atPath: t.path) else { return }
        try writeTokenizer(Data(contentsOf: t), to: dst)
    }

    /// The special tokens: BOS and EOS from config.json's ids (else the tokenizer's
    /// `<|begin_of_text|>` / `<|end_of_text|>`), PAD the added token named like a pad, if any.
    static func specials(_ tok: BPETokenizer, _ c: ModelConfig) -> (bos: BPETokenizer.AddedToken?, eos: BPETokenizer.AddedToken?, pad: BPETokenizer.AddedToken?)
    {
        func added(_ id: Int?) -> BPETokenizer.AddedToken? { id.flatMap { i in tok.addedTokens.first { Int($0.id) == i } } }
        func named(_ s: String) -> BPETokenizer.AddedToken? { tok.addedTokens.first { $0.content == s } }
        let bos = added(c.bosTokenId) ?? named("<|begin_of_text|>")
        let eos = added(c.eosTokenIds.first) ?? named("<|end_of_text|>")
        let pad = tok.addedTokens.first { $0.content.lowercased().contains("pad") }
        return (bos, eos, pad)
    }

    /// transformers' `PreTrainedTokenizerFast.save_pretrained` fields (checked against a fixture
    /// it wrote, in ModelIOTests).
    struct TokenizerConfig: Encodable {
        struct Added: Encodable {
            let content: String
            let lstrip = false, normalized = false, rstrip = false
            let single_word = false
            let special: Bool
        }
        let added_tokens_decoder: [String: Added]
        let bos_token: String?
        let eos_token: String?
        let pad_token: String?
        let clean_up_tokenization_spaces = false
        let model_input_names = ["input_ids", "attention_mask"]
        let model_max_length: Int
        let tokenizer_class = "PreTrainedTokenizerFast"
    }

    static func tokenizerConfig(_ tok: BPETokenizer, _ c: ModelConfig) -> TokenizerConfig {
        let s = specials(tok, c)
        return TokenizerConfig(
            added_tokens_decoder: Dictionary(
                uniqueKeysWithValues: tok.addedTokens.map { (String($0.id), TokenizerConfig.Added(content: $0.content, special: $0.special)) }),
            bos_token: s.bos?.content, eos_token: s.eos?.content, pad_token: s.pad?.content,
            model_max_length: c.maxPositionEmbeddings)
    }

    /// Greedy by default, stopping at EOS, padding with PAD (else EOS).
    struct GenerationConfig: Encodable {
        let bos_token_id: Int32?
        let eos_token_id: Int32?
        let pad_token_id: Int32?
        let do_sample = false
        let max_length: Int
    }

    static func generationConfig(_ tok: BPETokenizer, _ c: ModelConfig) -> GenerationConfig {
        let s = specials(tok, c)
        return GenerationConfig(
            bos_token_id: s.bos?.id, eos_token_id: s.eos?.id, pad_token_id: (s.pad ?? s.eos)?.id, max_length: c.maxPositionEmbeddings)
    }
}
