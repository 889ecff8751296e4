#!/usr/bin/env python3
"""TER fixture of random short segments (run once; output is committed):
Tests/MixMoETests/Fixtures/significance/ter_random.json.

sacreBLEU's TER on 1000 random (hypothesis, reference) pairs over a 5-word vocabulary, where
Tercom's shift search often shifts a block "within the shifted string" up to the end of the
hypothesis: there `_perform_shift` slices past the end, which Python clamps (an implementation
that does not crashes or diverges). Stored per pair: edits and reference length (sentence-level
statistics), and whether that slice was clamped; plus the corpus score.
"""
import json, os, random
import sacrebleu.metrics.lib_ter as lib
from sacrebleu.metrics import TER

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "MixMoETests", "Fixtures", "significance", "ter_random.json")


def main():
    original = lib._perform_shift

    def spy(words, start, length, target):
        if start <= target <= start + length and length + target > len(words):
            spy.clamped = True
        return original(words, start, length, target)

    lib._perform_shift = spy
    rnd = random.Random(0)
    vocab = "a b c d e".split()
    metric = TER()
    cases = []
    for _ in range(1000):
        h = " ".join(rnd.choice(vocab) for _ in range(rnd.randint(1, 12)))
        r = " ".join(rnd.choice(vocab) for _ in range(rnd.randint(1, 12)))
        spy.clamped = False
        st = metric._extract_corpus_statistics([h], [[r]])[0]
        cases.append({"hyp": h, "ref": r, "edits": st[0], "ref_length": st[1], "clamped": spy.clamped})
    corpus = metric.corpus_score([c["hyp"] for c in cases], [[c["ref"] for c in cases]]).score
    json.dump({"cases": cases, "corpus_score": corpus}, open(OUT, "w"))
    print(sum(c["clamped"] for c in cases), "of", len(cases), "clamped; corpus TER", corpus)


if __name__ == "__main__":
    main()
