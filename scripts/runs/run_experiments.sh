#!/usr/bin/env bash
# Runs every experiment of docs/RESULTS-exploratory.md with one budget, in an order that lets later
# experiments reuse finished runs from the run cache (main first: its Mix-MoE is the default
# variant of every ablation). Reports go to reports/; logs to runs/experiments/NAME.log.
#   scripts/runs/run_experiments.sh            # the budget RESULTS-exploratory.md was measured with
#   S1=20 S2=80 SEEDS=0,1 scripts/runs/run_experiments.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/tools/build_env.sh
S1=${S1:-15}; S2=${S2:-60}; BT=${BT:-4096}; SEGS=${SEGS:-30}; SEEDS=${SEEDS:-0}; LR=${LR:-2e-3}
DATA=${DATA:-data/demo}; MODEL=${MODEL:-models/base}
swift build -c release >/dev/null
mkdir -p runs/experiments
for name in ${EXPERIMENTS:-main ablation utilisation forgetting router-features placement experts balance}; do
  echo "== $name $(date -u +%H:%M:%S)"
  .build/release/mixmoe experiment "$name" --model "$MODEL" --data "$DATA" --stage1-steps "$S1" --stage2-steps "$S2" \
    --batch-tokens "$BT" --micro-tokens "$BT" --lr1 "$LR" --lr2 "$LR" --test-segments "$SEGS" --seeds "$SEEDS" \
    --threads 2 2> "runs/experiments/$name.log" | tail -n +1 >/dev/null
  grep -E "mean BLEU|reused" "runs/experiments/$name.log" | sed 's/^/  /'
done
