#!/usr/bin/env python3
"""Fixture for the experiments' paired bootstrap of a mean-over-directions difference, pooled
over seeds (run once; output is committed): Tests/MixMoETests/Fixtures/significance/stratified.json.

The statistic is the one experiment tables report: BLEU averaged over directions (and over the
seeds' runs of each system). Each resample draws, for every direction, its segments with
replacement (stratified: a direction keeps its own size); the same draw serves every seed, since
all seeds translate the same test set. Draws come from NumPy's default_rng(12345), one
`choice(n_d, (samples, n_d))` per direction in order, statistics resampled as float32 arrays and
scored with sacreBLEU's own `_compute_score_from_stats`, as sacreBLEU's paired bootstrap does.
Outputs: the real difference (b - a), the 95% percentile interval of the resampled differences
(sorted, bounds at samples/40 from each end, sacreBLEU's `estimate_ci` convention), and
sacreBLEU's p-value on absolute differences centred on their mean.
"""
import json, os, random
import numpy as np
from sacrebleu.metrics import BLEU

ROOT = os.path.join(os.path.dirname(__file__), "..")
OUT = os.path.join(ROOT, "Tests", "MixMoETests", "Fixtures", "significance", "stratified.json")


def column(lang, col, n):
    rows = [l.rstrip("\n").split("\t") for l in open(os.path.join(ROOT, "data", "demo", "parallel", f"test.{lang}-en.tsv"), encoding="utf-8")]
    return [r[col] for r in rows[:n]]


def perturb(refs, rate, seed):
    """Word drops, substitutions and swaps (characters for text without spaces, e.g. Chinese)."""
    rnd = random.Random(seed)
    out = []
    for r in refs:
        spaced = " " in r
        w = r.split() if spaced else list(r)
        vocab = w or ["x"]
        w = [x for x in w if rnd.random() > rate / 2] or w[:1]
        for i in range(len(w)):
            if rnd.random() < rate / 2:
                w[i] = rnd.choice(vocab)
        if len(w) > 2 and rnd.random() < rate:
            i = rnd.randrange(len(w) - 1)
            w[i], w[i + 1] = w[i + 1], w[i]
        out.append((" " if spaced else "").join(w))
    return out


def test(dirs, a, b, samples, seed):
    S, D = len(a), len(dirs)
    metrics = [BLEU(tokenize=d["tokenize"]) for d in dirs]
    refs = [d["references"] for d in dirs]
    real = np.mean([[metrics[k].corpus_score(b[s][k], [refs[k]]).score - metrics[k].corpus_score(a[s][k], [refs[k]]).score
                     for k in range(D)] for s in range(S)])
    st = lambda k, h: np.array(metrics[k]._extract_corpus_statistics(h, [refs[k]]), dtype="float32")
    sa = [[st(k, a[s][k]) for k in range(D)] for s in range(S)]
    sb = [[st(k, b[s][k]) for k in range(D)] for s in range(S)]
    rng = np.random.default_rng(seed)
    idxs = [rng.choice(len(refs[k]), size=(samples, len(refs[k])), replace=True) for k in range(D)]
    diffs = np.zeros(samples)
    for r in range(samples):
        tot = 0.0
        for s in range(S):
            for k in range(D):
                i = idxs[k][r]
                tot += metrics[k]._compute_score_from_stats(sb[s][k][i].sum(0)).score \
                    - metrics[k]._compute_score_from_stats(sa[s][k][i].sum(0)).score
        diffs[r] = tot / (S * D)
    srt = np.sort(diffs)
    lo = samples // 40
    absd = np.abs(diffs)
    p = (np.sum((absd - absd.mean()) > abs(real)).item() + 1) / (samples + 1)
    return {"delta": float(real), "lower": float(srt[lo]), "upper": float(srt[samples - lo - 1]), "p_value": p}


def main():
    dirs = [
        {"direction": "de-en", "tokenize": "13a", "references": column("de", 1, 40)},
        {"direction": "en-zh", "tokenize": "zh", "references": column("zh", 0, 30)},
        {"direction": "fi-en", "tokenize": "13a", "references": column("fi", 1, 50)},
    ]
    # two seeds of two systems; b is the better system (fewer perturbations) in the first case,
    # barely different in the second
    cases = []
    for name, rate_a, rate_b in [("clear", 0.5, 0.25), ("close", 0.35, 0.33)]:
        a = [[perturb(d["references"], rate_a, 100 * s + k) for k, d in enumerate(dirs)] for s in range(2)]
        b = [[perturb(d["references"], rate_b, 1000 + 100 * s + k) for k, d in enumerate(dirs)] for s in range(2)]
        cases.append({"name": name, "a": a, "b": b,
                      "two_seeds": test(dirs, a, b, 1000, 12345),
                      "first_seed": test(dirs, a[:1], b[:1], 1000, 12345)})
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    json.dump({"samples": 1000, "seed": 12345, "directions": dirs, "cases": cases}, open(OUT, "w"), ensure_ascii=False)
    for c in cases:
        print(c["name"], c["two_seeds"], c["first_seed"])


if __name__ == "__main__":
    main()
