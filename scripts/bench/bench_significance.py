#!/usr/bin/env python3
"""Times paired significance tests, mixmoe against sacreBLEU, on the same files in one run.

3 systems (baseline + 2) x 1000 segments (English references of data/demo's test splits,
systems are seeded perturbations), paired bootstrap (1000 resamples) and approximate
randomization (10,000 trials), BLEU, chrF and TER; the median of REPS runs of each command
(whole-process wall time, so both include start-up and reading the files).
  python3 scripts/bench/bench_significance.py [MIXMOE_BINARY] [REPS]
"""
import os, random, statistics, subprocess, sys, tempfile, time

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build", "release", "mixmoe")
REPS = int(sys.argv[2]) if len(sys.argv) > 2 else 3


def perturb(refs, rate, seed):
    rnd = random.Random(seed)
    vocab = [w for r in refs for w in r.split()]
    out = []
    for r in refs:
        w = [x for x in r.split() if rnd.random() > rate / 2] or r.split()[:1]
        w = [rnd.choice(vocab) if rnd.random() < rate / 2 else x for x in w]
        out.append(" ".join(w))
    return out


def main():
    refs = []
    for lang in ["de", "cs", "ru", "fi", "tr"]:
        refs += [l.split("\t")[0] for l in open(os.path.join(ROOT, "data", "demo", "parallel", f"test.{lang}-en.tsv"), encoding="utf-8").read().splitlines()]
    refs = refs[:1000]
    d = tempfile.mkdtemp()
    files = []
    for name, rate, seed in [("baseline", 0.35, 2), ("better", 0.25, 3), ("similar", 0.34, 4)]:
        p = os.path.join(d, name + ".txt")
        open(p, "w", encoding="utf-8").write("\n".join(perturb(refs, rate, seed)) + "\n")
        files.append(p)
    ref = os.path.join(d, "ref.txt")
    open(ref, "w", encoding="utf-8").write("\n".join(refs) + "\n")
    print(f"{len(refs)} segments, 3 systems, {REPS} reps; mixmoe: {BIN}")
    print("| test | metric | mixmoe (s) | sacreBLEU (s) | sacreBLEU / mixmoe |")
    print("|---|---|---|---|---|")
    for test in ["paired-bs", "paired-ar"]:
        for metric in ["bleu", "chrf", "ter"]:
            ours = [BIN, "score", "--metric", metric, "--ref", ref, f"--{test}"] + files
            theirs = ["sacrebleu", ref, "-i"] + files + ["-m", metric, f"--{test}", "-f", "text"]  # its JSON output fails on float32 scores (sacreBLEU 2.6 + NumPy 2)
            t = {}
            for name, cmd in [("mixmoe", ours), ("sacrebleu", theirs)]:
                times = []
                for _ in range(REPS):
                    t0 = time.perf_counter()
                    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    times.append(time.perf_counter() - t0)
                t[name] = statistics.median(times)
            print(f"| {test} | {metric} | {t['mixmoe']:.2f} | {t['sacrebleu']:.2f} | {t['sacrebleu'] / t['mixmoe']:.1f}x |")


if __name__ == "__main__":
    main()
