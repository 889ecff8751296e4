#!/usr/bin/env python3
"""TER and paired-significance fixtures from sacreBLEU 2.x (run once; output is committed).

Writes Tests/MixMoETests/Fixtures/significance/sacrebleu.json:
  rng       -- numpy default_rng(12345): integers(0, 300, 40) and integers(2, 40, dtype=bool)
  ter       -- corpus TER of edge-case and real segments under every option combination
  paired    -- 3 systems (baseline + 2) x 300 real segments: paired bootstrap (1000 resamples)
               and approximate randomization (10,000 trials) for BLEU, chrF and TER, as sacreBLEU's
               PairedTest reports them (score, mean, ci, p_value)
Systems are seeded perturbations (word drops, swaps, substitutions) of the references of
data/demo/parallel/test.*-en.tsv, so the differences between systems span significant and not.
"""
import itertools, json, os, random
import numpy as np
from sacrebleu.metrics import BLEU, CHRF, TER
from sacrebleu.significance import PairedTest

ROOT = os.path.join(os.path.dirname(__file__), "..")
OUT = os.path.join(ROOT, "Tests", "MixMoETests", "Fixtures", "significance")


def real_segments(n):
    segs = []
    for lang in ["de", "cs", "ru", "fi"]:
        for line in open(os.path.join(ROOT, "data", "demo", "parallel", f"test.{lang}-en.tsv"), encoding="utf-8"):
            segs.append(line.rstrip("\n").split("\t")[0])
    return segs[:n]


def perturb(refs, rate, seed):
    rnd = random.Random(seed)
    vocab = [w for r in refs for w in r.split()]
    out = []
    for r in refs:
        w = r.split()
        w = [x for x in w if rnd.random() > rate / 2] or w[:1]
        for i in range(len(w)):
            if rnd.random() < rate / 2:
                w[i] = rnd.choice(vocab)
        if len(w) > 2 and rnd.random() < rate:
            i = rnd.randrange(len(w) - 1)
            w[i], w[i + 1] = w[i + 1], w[i]
        out.append(" ".join(w))
    return out


EDGE = [
    ("The cat's toy, isn't it?", "the cat's toys , is n't it ?"),
    ("It costs 3.50 dollars - or 3,50 euros; 1999-2001.", "It costs 3.50 dollars or 3,50 euros in 1999 - 2001 ."),
    ("A &amp; B &lt;tag&gt; &quot;quoted&quot;", 'A & B <tag> "quoted"'),
    ("Hello WORLD (again)!", "hello world again"),
    ("我们今天去北京。", "我们 明天 去 上海。"),
    ("東京タワー、すごい！", "東京タワーはすごい！"),
    ("", "Nothing here"),
    ("Extra words at the end", ""),
    ("one two three four five six seven", "five six seven one two three four"),
    ("a b c d e f g h i j k l m n o", "k l m n o a b c d e f g h i j"),
    ("Grüße aus Köln: ÄÖÜ", "grüße aus köln : äöü"),
    ("Drag the file here to open it", "Drag here the file to open it"),
]


def num(x):
    return None if x is None else float(x)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(12345)
    ints = rng.integers(0, 300, size=40).tolist()
    bools = np.random.default_rng(12345).integers(2, size=40, dtype=bool).astype(int).tolist()

    refs = real_segments(300)
    hyps_real = perturb(refs, 0.3, 1)
    ter_cases = []
    for norm, nopunct, asian, case in itertools.product([False, True], repeat=4):
        m = TER(normalized=norm, no_punct=nopunct, asian_support=asian, case_sensitive=case)
        for name, (hyps, rs) in {"edge": ([h for h, _ in EDGE], [r for _, r in EDGE]),
                                 "real": (hyps_real, refs)}.items():
            s = m.corpus_score(hyps, [rs])
            ter_cases.append({"name": name, "normalized": norm, "no_punct": nopunct, "asian_support": asian,
                              "case_sensitive": case, "hyps": hyps, "refs": rs, "score": float(s.score),
                              "edits": s.num_edits, "ref_length": float(s.ref_length),
                              "signature": str(m.get_signature())})

    systems = [("baseline", perturb(refs, 0.35, 2)), ("better", perturb(refs, 0.25, 3)), ("similar", perturb(refs, 0.34, 4))]
    paired = []
    for test, n in [("bs", 1000), ("ar", 10000)]:
        for mname, metric in [("bleu", BLEU()), ("chrf", CHRF()), ("ter", TER())]:
            metric_refs = type(metric)(references=[refs])
            _, scores = PairedTest(systems, {mname: metric_refs}, references=None, test_type=test, n_samples=n)()
            key = [k for k in scores if k != "System"][0]
            paired.append({"test": test, "metric": mname, "samples": n, "systems": [
                {"name": sysname, "score": num(r.score), "mean": num(r.mean), "ci": num(r.ci), "p_value": num(r.p_value)}
                for sysname, r in zip(scores["System"], scores[key])]})
    with open(os.path.join(OUT, "sacrebleu.json"), "w", encoding="utf-8") as f:
        json.dump({"rng": {"integers_300": ints, "booleans": bools}, "ter": ter_cases,
                   "paired": {"references": refs, "systems": [{"name": n, "hypotheses": h} for n, h in systems],
                              "results": paired}}, f, ensure_ascii=False)
    for p in paired:
        print(p["test"], p["metric"], [(s["name"], round(s["score"], 2), s["p_value"]) for s in p["systems"]])


if __name__ == "__main__":
    main()
