#!/usr/bin/env python3
"""How often a system's test outputs repeat: for each method of an experiment report (main.json),
the share of hypotheses identical to another hypothesis of the same direction (empty outputs
included), into English and out of English, averaged over directions and seeds. Writes
duplicates.md beside the report.

    python3 scripts/check/duplicate_outputs.py reports/decisive/base-c4-all-methods/main.json
"""
import collections
import json
import os
import statistics as st
import sys


def main(path):
    d = json.load(open(path, encoding="utf-8"))
    per = collections.defaultdict(lambda: {"into": [], "out": [], "empty_into": [], "empty_out": []})
    for r in d["runs"]:
        for dr in r["directions"]:
            h = dr["hypotheses"]
            c = collections.Counter(h)
            side = "into" if dr["direction"].endswith("-en") else "out"
            per[(r["variant"], r["seed"])][side].append(sum(1 for x in h if c[x] > 1) / len(h))
            per[(r["variant"], r["seed"])]["empty_" + side].append(sum(1 for x in h if not x.strip()) / len(h))
    methods = collections.OrderedDict()
    for (v, s), a in per.items():
        m = methods.setdefault(v, collections.defaultdict(list))
        for k, vals in a.items():
            m[k].append(st.mean(vals))
    lines = [f"# Repeated outputs: {os.path.relpath(path)}", "",
             "Share of test hypotheses identical to another hypothesis of the same direction (empty ones included), "
             "and share of empty hypotheses; mean over the 7 directions of each side and over seeds.", "",
             "| method | seeds | into English: repeated | out of English: repeated | into English: empty | out of English: empty |",
             "|---|---|---|---|---|---|"]
    for v, m in methods.items():
        lines.append(f"| {v} | {len(m['into'])} | {100 * st.mean(m['into']):.1f}% | {100 * st.mean(m['out']):.1f}% | "
                     f"{100 * st.mean(m['empty_into']):.1f}% | {100 * st.mean(m['empty_out']):.1f}% |")
    lines += ["", f"Command: `python3 scripts/check/duplicate_outputs.py {os.path.relpath(path)}`", ""]
    out = os.path.join(os.path.dirname(path), "duplicates.md")
    open(out, "w", encoding="utf-8").write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1])
