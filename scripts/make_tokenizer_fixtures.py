#!/usr/bin/env python3
"""Tokenizer fixtures (committed): tokenizer.json files trained with Hugging Face `tokenizers` in the
GPT-2 style (ByteLevel with its own regex), Llama-3 style (Split regex + ByteLevel, ignore_merges,
BOS template) and Qwen2 style (NFC normaliser, single-digit split, EOS appended by the template), and a multilingual test
set with the ids HF gives for each line (with and without special tokens).

  python3 scripts/make_tokenizer_fixtures.py --data CORPUS_DIR
"""
import argparse, json, os, random
from tokenizers import Tokenizer, Regex, models, pre_tokenizers, decoders, processors, normalizers, trainers

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "MixMoETests", "Fixtures", "tokenizers")
LLAMA3 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
LANGS = ["en", "de", "cs", "ru", "tr", "zh", "fi", "et"]

EDGE = [
    "", " ", "  ", "a", "Hello world", "Hello  world", "Hello   world  ", "   leading spaces",
    "tabs\there\t\tand\t", "new\nline", "two\n\nnewlines\n", "crlf\r\nline\r\n", " \n \n x", "trailing \n",
    "don't DON'T it's IT'S we're WE'RE I'll I'M you'd YOU'VE", "'s 'S 'll 'LL ' '' '''", "rock'n'roll",
    "curly ’s apostrophe ‘quoted’", "12345 3.14159 1,000,000 2024-11-29 0x1F", "digits123abc456",
    "١٢٣ ٤٥٦ Arabic-Indic", "Ⅻ roman ½ fraction ² superscript",
    "emoji 😀 👍🏽 👨‍👩‍👧 🇩🇪 flags", "astral 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𠀀𠀁 𝟘𝟙𝟚", "mixed Linux内核版本2.6.32", "Привет, world! Мир123",
    "Grüße aus Köln – „Anführungszeichen“", "Příliš žluťoučký kůň úpěl ďábelské ódy.", "İstanbul'da ığdır ŞÇÖÜ",
    "Hyvää päivää, äiti! Öljy", "Tere õhtust, šokolaad ja žürii", "中文，标点。“引号”！？", "日本語とカタカナ、한국어",
    "nbsp\u00a0here and\u2009thin\u3000ideographic", "nel\u0085next", "zero\u200bwidth", "combining e\u0301 vs é",
    "<|begin_of_text|>special<|end_of_text|> inside", "a<|end_of_text|>", "<|end_of_text|>",
    "punct!!! ??? ... --- ;;; (parens) [brackets] {braces}", "path/to/file.txt --flag=value -x", "%s %d %1$s {0} ${var}",
    "email@example.com https://example.org/a?b=c&d=e", "C++ C# .NET node.js", "\t\t\n\t", "    \n    indented",
]


def sample_corpus(data, n_per_lang=3000, seed=0):
    rng = random.Random(seed)
    lines = []
    for lang in LANGS:
        with open(os.path.join(data, "mono", f"{lang}.txt"), encoding="utf-8") as f:
            all_lines = f.read().splitlines()
        lines += rng.sample(all_lines, min(n_per_lang, len(all_lines)))
    return lines


def test_lines(data, seed=1):
    rng = random.Random(seed)
    lines = list(EDGE)
    for lang in [l for l in LANGS if l != "en"]:
        with open(os.path.join(data, "parallel", f"dev.{lang}-en.tsv"), encoding="utf-8") as f:
            pairs = [l.split("\t") for l in f.read().splitlines()]
        for en, xx in rng.sample(pairs, 25):
            lines += [en, xx]
    return lines


def build(kind, corpus):
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|pad|>"]
    tok = Tokenizer(models.BPE(ignore_merges=(kind == "llama3")))
    if kind == "gpt2":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        specials = ["<|endoftext|>"]
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(LLAMA3 if kind == "llama3" else QWEN2), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
        if kind == "qwen2":
            tok.normalizer = normalizers.NFC()
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=3000, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer)
    if kind == "qwen2":  # an EOS-appending template: exercises the post-processor's suffix
        eos = tok.token_to_id("<|end_of_text|>")
        tok.post_processor = processors.TemplateProcessing(single="$A <|end_of_text|>", pair="$A <|end_of_text|> $B <|end_of_text|>",
                                                           special_tokens=[("<|end_of_text|>", eos)])
    if kind == "llama3":
        bos = tok.token_to_id("<|begin_of_text|>")
        tok.post_processor = processors.TemplateProcessing(
            single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
            special_tokens=[("<|begin_of_text|>", bos)])
    return tok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="the full corpus (mono/*.txt, parallel/*.tsv)")
    a = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    corpus = sample_corpus(a.data)
    lines = test_lines(a.data)
    for kind in ["gpt2", "llama3", "qwen2"]:
        tok = build(kind, corpus)
        path = os.path.join(OUT, f"{kind}.json")
        tok.save(path)
        if kind == "gpt2":  # also exercise the legacy "a b" merges spelling
            j = json.load(open(path, encoding="utf-8"))
            j["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in j["model"]["merges"]]
            json.dump(j, open(path, "w", encoding="utf-8"), ensure_ascii=False)
            tok = Tokenizer.from_file(path)
        cases = []
        for s in lines:
            ids = tok.encode(s, add_special_tokens=False).ids
            cases.append({"text": s, "ids": ids, "ids_special": tok.encode(s, add_special_tokens=True).ids,
                          "decoded": tok.decode(ids, skip_special_tokens=False)})
        json.dump(cases, open(os.path.join(OUT, f"{kind}.expected.json"), "w", encoding="utf-8"),
                  ensure_ascii=False, indent=0)
        print(kind, "vocab", tok.get_vocab_size(), "cases", len(cases))


if __name__ == "__main__":
    main()
