#!/usr/bin/env bash
# Issue 19's decisive runs: `main` at several base checkpoints, several seeds, 200 test
# segments per direction and a budget at which dense SFT's dev loss has flattened
# (reports/budget: 400 steps of 4096 tokens). Every finished run is stored in reports/runs/
# (committed), keyed by numerics version, base weights, data, method, budget, seed and threads,
# so the script can be killed and rerun: finished runs are reused, not retrained.
#   BIN=/path/to/mixmoe-copy BASES="base-c4 base-c2" SEEDS="0 1 2" scripts/runs/decisive.sh
# Methods train at the budget's LR unless MLR gives them their own rate (reports/lr: dense SFT is
# best at 5e-4, Mix-MoE's stage 2 at 2e-3): MLR="sft=5e-4" (space-separated METHOD=LR2 or METHOD=LR1/LR2).
# Each (base, seed) writes reports/decisive/BASE/main-sSEED.{md,json}; two copies of this script
# with different SEEDS can run side by side on 2 cores (THREADS=1 each).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-.build/release/mixmoe}
BASES=${BASES:-base-c4}; SEEDS=${SEEDS:-0 1 2}; METHODS=${METHODS:-base,sft,moe-pt-sft,mix-moe}
S1=${S1:-100}; S2=${S2:-300}; BT=${BT:-4096}; SEGS=${SEGS:-200}; LR=${LR:-2e-3}; THREADS=${THREADS:-1}
DATA=${DATA:-data/demo}; MLR=${MLR:-sft=5e-4}
mlr=(); for o in $MLR; do mlr+=(--method-lr "$o"); done
for base in $BASES; do
  for seed in $SEEDS; do
    out=reports/decisive/$base; mkdir -p "$out/s$seed" runs/decisive
    echo "== $base seed $seed $(date -u +%H:%M:%S)"
    "$BIN" experiment main --model "models/checkpoints/$base" --data "$DATA" --methods "$METHODS" \
      --stage1-steps "$S1" --stage2-steps "$S2" --batch-tokens "$BT" --micro-tokens "$BT" --lr1 "$LR" --lr2 "$LR" \
      "${mlr[@]}" --test-segments "$SEGS" --seeds "$seed" --threads "$THREADS" --cache reports/runs --reports "$out/s$seed" \
      2>> "runs/decisive/$base-s$seed.log" >/dev/null
    grep -E "mean BLEU" "runs/decisive/$base-s$seed.log" | tail -4 | sed 's/^/  /'
  done
done
