#!/usr/bin/env bash
# Data-parallel scaling on one machine (docs/PERFORMANCE.md, "Data parallelism"): `bench train`
# on the `small` config, full training and Mix-MoE stage 2, as 1 rank x 1 thread, 1 rank x 2
# threads, 2 ranks x 1 thread, and 2 ranks x 1 thread with ZeRO-1. The machine should be idle.
#   [METHODS="full stage2"] scripts/bench/bench_scaling.sh [REPS]     (JSON lines to stdout, a table to stderr)
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/tools/build_env.sh
swift build -c release >/dev/null
REPS=${1:-5}
B=.build/release/mixmoe
MPI=(mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2)
out=$(mktemp)
for method in ${METHODS:-full stage2}; do
  common=(bench train --config small --method "$method" --batch 8 --seq 256 --reps "$REPS" --warmup 1)
  "$B" "${common[@]}" --threads 1 | sed 's/^{/{"setup":"1x1",/' >>"$out"
  "$B" "${common[@]}" --threads 2 | sed 's/^{/{"setup":"1x2",/' >>"$out"
  "${MPI[@]}" "$B" "${common[@]}" --threads 1 | sed 's/^{/{"setup":"2x1",/' >>"$out"
  "${MPI[@]}" "$B" "${common[@]}" --threads 1 --zero1 | sed 's/^{/{"setup":"2x1 zero1",/' >>"$out"
done
cat "$out"
python3 - "$out" >&2 <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| method | ranks x threads | tokens/s | vs 1x1 | step s (median) | collectives: share of step | MB per step per rank | buffers peak MB (rank 0) | peak RSS MB (rank 0) |")
print("|---|---|---|---|---|---|---|---|---|")
base = {}
for r in rows:
    if r["setup"] == "1x1": base[r["method"]] = r["tokens_per_s"]
    print(f'| {r["method"]} | {r["setup"]} | {r["tokens_per_s"]:.0f} | {r["tokens_per_s"]/base[r["method"]]:.2f}x | {r["median_s"]:.2f} | '
          f'{100*r["collective_share"]:.1f}% | {r["collective_mb_per_step"]:.1f} | {r["buffers_peak_mb"]:.0f} | {r["peak_rss_mb"]:.0f} |')
PY
