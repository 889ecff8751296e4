#!/usr/bin/env python3
"""sacreBLEU fixtures (committed): corpora of hypothesis/reference pairs with the BLEU (every
tokenizer), chrF and chrF++ scores and signatures sacreBLEU 2.x gives.

  python3 scripts/make_bleu_fixtures.py --data CORPUS_DIR
"""
import argparse, json, os, random
import sacrebleu
from sacrebleu.metrics import BLEU, CHRF

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "MixMoETests", "Fixtures", "bleu", "sacrebleu.json")
TOKS = ["13a", "zh", "intl", "char", "none"]

EDGE = [
    ("The cat sat on the mat.", "The cat sat on the mat."),
    ("", "A reference with words."),
    ("", ""),
    ("A much longer hypothesis than its reference, with many extra words that go on and on.", "A short one."),
    ("Hello!!! What?? (yes) [no] {maybe} -- 3.14, 1,000.5 -x- 1990-2000 & &amp; &lt;tag&gt; &quot;q&quot;",
     "Hello! What? (yes) [no] {maybe} - 3.14, 1,000.5 -x- 1990 - 2000 & < tag > \"q\""),
    ("Привет, мир! Это тест... «кавычки» — тире.", "Привет мир! Это тест. «Кавычки» – тире."),
    ("İstanbul'da ığdır, ŞÇÖÜ güzel; değil mi?", "İstanbul'da Iğdır ŞÇÖÜ güzel, değil mi?"),
    ("我们今天去北京，天气很好。", "今天我们去北京，天气非常好！"),
    ("混合 text 和 English 单词 123。", "混合文本和English单词123."),
    ("dash – em — quote “x” ‘y’ … ellipsis → arrow ≤ math ∑ ★ ☺", "dash - em - quote \"x\" 'y' ... ellipsis -> arrow <= math sum * :)"),
    ("full-width ＡＢＣ（１２３）", "full-width ABC (123)"),
    ("tabs\tand  spaces\u00a0nbsp\u3000ideo", "tabs and spaces nbsp ideo"),
    ("trailing spaces   ", "trailing spaces"),
    ("e\u0301 decomposed vs é", "é precomposed vs é"),
    ("<skipped> token kept-\nline", "token kept line"),
    ("a.b,c 1.5 2,5 x. y, 3-4 a-b", "a . b , c 1.5 2,5 x . y , 3 - 4 a-b"),
    ("Ünïcödé wörds and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 😀 emoji", "Unicode words and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 😀 emoji"),
]


def perturb(rng, refs, seg):
    words = seg.split()
    r = rng.random()
    if r < 0.05:
        return ""
    if r < 0.15:
        return rng.choice(refs)
    if r < 0.25:
        return seg + " " + " ".join(words[: max(1, len(words) // 2)])
    if len(words) > 2 and r < 0.55:
        i, j = rng.sample(range(len(words)), 2)
        words[i], words[j] = words[j], words[i]
    if len(words) > 1 and rng.random() < 0.5:
        del words[rng.randrange(len(words))]
    if rng.random() < 0.3:
        words = [w.lower() for w in words]
    return " ".join(words)


def perturb_chars(rng, refs, seg):
    chars = list(seg)
    r = rng.random()
    if r < 0.05:
        return ""
    if r < 0.15:
        return rng.choice(refs)
    for _ in range(max(1, len(chars) // 6)):
        if len(chars) > 1 and rng.random() < 0.5:
            del chars[rng.randrange(len(chars))]
        elif len(chars) > 2:
            i, j = rng.sample(range(len(chars)), 2)
            chars[i], chars[j] = chars[j], chars[i]
    return "".join(chars)


def score_case(name, hyps, refs):
    case = {"name": name, "hyps": hyps, "refs": refs, "bleu": {}, "signatures": {}}
    for tok in TOKS:
        m = BLEU(tokenize=tok)
        case["bleu"][tok] = m.corpus_score(hyps, [refs]).score
        case["signatures"]["bleu:" + tok] = str(m.get_signature())
    for name_, wo in (("chrf", 0), ("chrf++", 2)):
        m = CHRF(word_order=wo)
        case[name_] = m.corpus_score(hyps, [refs]).score
        case["signatures"][name_] = str(m.get_signature())
    return case


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="the full corpus (parallel/*.tsv)")
    a = ap.parse_args()
    rng = random.Random(7)
    cases = [score_case("edge", [h for h, _ in EDGE], [r for _, r in EDGE])]
    for h, r in EDGE:  # each edge line alone too (empty corpora, single segments)
        cases.append(score_case("edge-single", [h], [r]))
    for lang, col, fn in [("de-en", 0, perturb), ("en-de", 1, perturb), ("en-zh", 1, perturb_chars),
                          ("en-ru", 1, perturb), ("en-tr", 1, perturb)]:
        src = "zh" if "zh" in lang else lang.replace("en", "").strip("-")
        path = os.path.join(a.data, "parallel", f"test.{src}-en.tsv")
        pairs = [l.split("\t") for l in open(path, encoding="utf-8").read().splitlines()]
        refs = [p[col] for p in pairs]
        n = 1000 if lang == "de-en" else 300
        refs = refs[:n]
        hyps = [fn(rng, refs, s) for s in refs]
        cases.append(score_case(f"real-{lang}-{n}", hyps, refs))
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    json.dump({"sacrebleu_version": sacrebleu.__version__, "cases": cases}, open(OUT, "w", encoding="utf-8"),
              ensure_ascii=False, indent=0)
    for c in cases[:1] + cases[-5:]:
        print(c["name"], {k: round(v, 2) for k, v in c["bleu"].items()}, round(c["chrf"], 2), round(c["chrf++"], 2))
    print(cases[0]["signatures"])


if __name__ == "__main__":
    main()
