#!/usr/bin/env bash
# Pretrains the embedded base model (models/base) from scratch on the shared corpus: monolingual
# text of all 8 languages plus both sides of the parallel training split. Resumable: run it again
# (it passes --resume when a checkpoint exists) to continue an interrupted run.
#   scripts/pretrain_base.sh [OUT] [DATA]
# STEPS (default 950) sets the schedule's length. The committed models/base was trained as: this
# script with STEPS=3000 up to step 600 (where a session ended), resumed with STEPS=1100 FORCE=1 up
# to step 741, then resumed with STEPS=950 FORCE=1 to the end (each time the cosine schedule is
# recomputed over the new length, i.e. annealed early for time). A fresh run with the defaults
# uses the 950-step schedule from the start.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/build_env.sh
OUT=${1:-/root/mixmoe-runs/base}
DATA=${2:-../shared/data}
swift build -c release >/dev/null
STEPS=${STEPS:-950}
resume=()
[ -d "$OUT/checkpoints" ] && resume=(--resume)
[ -d "$OUT/checkpoints" ] && [ "${FORCE:-0}" = 1 ] && resume+=(--force)
exec .build/release/mixmoe pretrain --config base --tokenizer models/base/tokenizer.json \
  --steps "$STEPS" --batch-tokens 8192 --seq 128 --micro-tokens 2048 --lr 2e-3 --warmup 0.03 \
  --checkpoint-every 25 --keep-checkpoints 3 --log-every 5 --threads 2 --seed 0 --out "$OUT" "${resume[@]}" \
  "$DATA"/mono/{en,cs,de,ru,tr,zh,fi,et}.txt "$DATA"/parallel/train.{cs,de,ru,tr,zh,fi,et}-en.tsv
