#!/usr/bin/env bash
# Runs mixmoe's and PyTorch's benchmarks alternately (A B A B ...) on the same machine and prints
# each measurement and the median ratio mixmoe / PyTorch of tokens/s per case.
#   scripts/bench/compare.sh [ROUNDS] [CONFIG]      (OUT=file keeps the raw JSON lines; THREADS=n)
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/tools/build_env.sh
ROUNDS=${1:-3}; CFG=${2:-small}; T=${THREADS:-2}
M=.build/release/mixmoe
swift build -c release >/dev/null
out=${OUT:-$(mktemp)}
: > "$out"
cases=(
  "train full|$M bench train --config $CFG --method full --threads $T --reps 3|python3 scripts/bench/bench_pytorch.py train --config $CFG --method full --threads $T --reps 3"
  "train lora|$M bench train --config $CFG --method lora --threads $T --reps 3|python3 scripts/bench/bench_pytorch.py train --config $CFG --method lora --threads $T --reps 3"
  "train stage2|$M bench train --config $CFG --method stage2 --threads $T --reps 3|python3 scripts/bench/bench_pytorch.py train --config $CFG --method stage2 --threads $T --reps 3"
  "prefill|$M bench prefill --config $CFG --threads $T|python3 scripts/bench/bench_pytorch.py prefill --config $CFG --threads $T"
  "decode b1|$M bench decode --config $CFG --batch 1 --threads $T --reps 3|python3 scripts/bench/bench_pytorch.py decode --config $CFG --batch 1 --threads $T --reps 3"
  "decode b8|$M bench decode --config $CFG --batch 8 --threads $T --reps 3|python3 scripts/bench/bench_pytorch.py decode --config $CFG --batch 8 --threads $T --reps 3"
)
for r in $(seq "$ROUNDS"); do
  for c in "${cases[@]}"; do
    IFS='|' read -r name a b <<<"$c"
    echo "{\"round\": $r, \"case\": \"$name\", \"mixmoe\": $($a 2>/dev/null | tail -1), \"pytorch\": $($b 2>/dev/null | tail -1)}" | tee -a "$out"
  done
done
python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
for case in dict.fromkeys(r["case"] for r in rows):
    m = [r["mixmoe"]["tokens_per_s"] for r in rows if r["case"] == case]
    p = [r["pytorch"]["tokens_per_s"] for r in rows if r["case"] == case]
    print(f"{case:14s} mixmoe {statistics.median(m):9.1f} tok/s   pytorch {statistics.median(p):9.1f} tok/s   ratio {statistics.median(m) / statistics.median(p):.2f}x")
PY
