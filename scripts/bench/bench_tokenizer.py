#!/usr/bin/env python3
"""Encode throughput of HF `tokenizers` next to `mixmoe tokenizer bench` on the same file and
tokenizer.json (run both in one go, alternating, medians).

  python3 scripts/bench/bench_tokenizer.py --tokenizer T.json --file F.txt [--mixmoe .build/release/mixmoe]
"""
import argparse, json, os, statistics, subprocess, time
from tokenizers import Tokenizer


def hf_once(path, lines, batch):
    tok = Tokenizer.from_file(path)  # fresh: no warm cache
    t0 = time.perf_counter()
    if batch:
        n = sum(len(e.ids) for e in tok.encode_batch(lines, add_special_tokens=False))
    else:
        n = sum(len(tok.encode(l, add_special_tokens=False).ids) for l in lines)
    return time.perf_counter() - t0, n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--file", required=True)
    ap.add_argument("--mixmoe", default=".build/release/mixmoe")
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    lines = open(a.file, encoding="utf-8").read().splitlines()
    mb = sum(len(l.encode()) for l in lines) / 1e6
    res = {"hf_single": [], "hf_batch": [], "mixmoe": []}
    for _ in range(a.reps):
        out = subprocess.run([a.mixmoe, "tokenizer", "bench", "--tokenizer", a.tokenizer, "--reps", "1", a.file],
                             capture_output=True, text=True, check=True).stdout
        res["mixmoe"].append(json.loads(out)["median_s"])
        res["hf_single"].append(hf_once(a.tokenizer, lines, False)[0])
        res["hf_batch"].append(hf_once(a.tokenizer, lines, True)[0])
    med = {k: statistics.median(v) for k, v in res.items()}
    for k, v in med.items():
        print(json.dumps({"case": "tokenizer_encode", "implementation": k, "mb": round(mb, 3), "median_s": v,
                          "mb_per_s": mb / v}))
    print(json.dumps({"ratio_mixmoe_vs_hf_single_thread": med["hf_single"] / med["mixmoe"],
                      "ratio_mixmoe_vs_hf_encode_batch": med["hf_batch"] / med["mixmoe"]}))


if __name__ == "__main__":
    main()
