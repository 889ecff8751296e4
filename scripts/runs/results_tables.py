#!/usr/bin/env python3
"""Summary tables for docs/RESULTS-exploratory.md from the reports `mixmoe experiment NAME` writes.

  python3 scripts/runs/results_tables.py [reports]
Every number printed here is read from reports/NAME.json (mean over seeds, ± sample std when
there are several).
"""
import json, math, os, statistics, sys

R = sys.argv[1] if len(sys.argv) > 1 else "reports"


def ms(xs):
    m = statistics.mean(xs)
    return (m, statistics.stdev(xs)) if len(xs) > 1 else (m, None)


def fmt(m, s):
    return f"{m:.2f}" if s is None else f"{m:.2f} ± {s:.2f}"


def util(stats):
    hs = []
    for layers in stats.values():
        for groups in layers.values():
            for g in groups.values():
                f = g.get("fraction", [])
                if len(f) > 1:
                    hs.append(-sum(p * math.log(p) for p in f if p > 0) / math.log(len(f)))
    return statistics.mean(hs) if hs else float("nan")


for name in ["main", "ablation", "router-features", "placement", "experts", "balance", "utilisation", "forgetting", "spread"]:
    p = os.path.join(R, f"{name}.json")
    if not os.path.exists(p):
        print(f"## {name}: no report\n")
        continue
    o = json.load(open(p))
    runs = o["runs"]
    # reports before the refactor kept budget and test_segments at the top level
    setup = o.get("setup", o)
    b = setup["budget"]
    b = {**b, **b.get("shared", {})}
    o["seeds"], o["test_segments"] = setup["seeds"], setup["test_segments"]
    print(f"## {name}\n")
    print(f"seeds {o['seeds']}, {b['stage1_steps']} mono + {b['stage2_steps']} parallel steps x {b['batch_tokens']} tokens, "
          f"lr {b['lr1']}/{b['lr2']}, {o['test_segments']} test segments per direction, wall {o['wall_time_s'] / 60:.1f} min "
          f"(reused runs: {sum(r.get('reused_from_cache', False) for r in runs)})\n")
    variants = list(dict.fromkeys(r["variant"] for r in runs))
    xx = [d["direction"] for d in runs[0]["directions"] if d["direction"].endswith("-en")]
    ex = [d["direction"] for d in runs[0]["directions"] if d["direction"].startswith("en-")]
    extra = name in ("balance", "utilisation")
    print("| variant | mean BLEU | mean chrF | xx→en BLEU | en→xx BLEU | train min |" + (" utilisation |" if extra else ""))
    print("|---|---|---|---|---|---|" + ("---|" if extra else ""))
    for v in variants:
        rs = [r for r in runs if r["variant"] == v]
        bl = ms([r["mean_bleu"] for r in rs]); ch = ms([r["mean_chrf"] for r in rs])
        def dirmean(ds):
            return statistics.mean(statistics.mean(d["bleu"] for d in r["directions"] if d["direction"] in ds) for r in rs)
        line = f"| {v} | {fmt(*bl)} | {fmt(*ch)} | {dirmean(xx):.2f} | {dirmean(ex):.2f} | {statistics.mean(r['train_s'] for r in rs) / 60:.1f} |"
        if extra:
            line += f" {statistics.mean(util(r['expert_stats']) for r in rs):.3f} |"
        print(line)
    if name == "forgetting":
        langs = sorted(runs[0]["perplexity"])
        print("\nDev perplexity (lower is better):\n")
        print("| variant | " + " | ".join(langs) + " | mean |")
        print("|---|" + "---|" * (len(langs) + 1))
        for v in variants:
            rs = [r for r in runs if r["variant"] == v]
            vals = [statistics.mean(r["perplexity"][l] for r in rs) for l in langs]
            print(f"| {v} | " + " | ".join(f"{x:.1f}" for x in vals) + f" | {statistics.mean(vals):.1f} |")
    print()
