#!/usr/bin/env bash
# Pretrains the embedded base model (models/base) on the full corpus: monolingual text of all 8
# languages plus both sides of the parallel training split (45.1 M tokens with its tokenizer).
#   scripts/runs/pretrain_base.sh OUT DATA                 from scratch (STEPS, default 950; FORCE=1)
#   INIT=DIR START=W scripts/runs/pretrain_base.sh OUT DATA continue from DIR's weights at window W of
#                                                      the data order (fresh AdamW, new schedule)
# Resumable: run it again with the same arguments (it passes --resume when OUT has checkpoints).
#
# History of the committed weights (8192-token steps of 64 windows of 128 tokens, lr 2e-3 peak):
#  1. models/base: this script with STEPS=3000 to step 600, resumed with STEPS=1100 FORCE=1 to 741,
#     then STEPS=950 FORCE=1 to 950 (cosine recomputed each time): 7.8 M tokens, windows 0-60,799.
#  2. models/checkpoints/base-c1: continued from (1) because its checkpoints (Adam moments) were
#     lost with the machine: INIT=models/base START=60800 STEPS=700 LR=1e-3 THREADS=1, 700 steps
#     (5.7 M tokens, windows 60,800-105,599; 1 thread beside other work).
#  3. models/checkpoints/base-c2: INIT=models/checkpoints/base-c1 START=105600 STEPS=850 LR=1e-3
#     THREADS=1, 850 steps (7.0 M tokens, windows 105,600-159,999; 20.5 M tokens in all).
#  4. models/checkpoints/base-c3: INIT=models/checkpoints/base-c2 START=160000 STEPS=1000 LR=1e-3
#     THREADS=1, 1000 steps (8.2 M tokens, windows 160,000-223,999; 28.7 M tokens in all; resumed
#     twice from its checkpoints after the machine stopped it).
#  5. models/checkpoints/base-c4: INIT=models/checkpoints/base-c3 START=224000 STEPS=1000 LR=1e-3
#     THREADS=1, 1000 steps (8.2 M tokens, windows 224,000-287,999; 36.9 M tokens in all; resumed
#     once from step 360 across sessions). Next segment: START from its run.json's data_end (288000).
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/tools/build_env.sh
OUT=${1:?usage: scripts/runs/pretrain_base.sh OUT_DIR CORPUS_DIR}
DATA=${2:?usage: scripts/runs/pretrain_base.sh OUT_DIR CORPUS_DIR}
swift build -c release >/dev/null
# a copy of the binary, so that rebuilding the checkout does not change a running pretraining
mkdir -p "$OUT"
cp .build/release/mixmoe "$OUT/mixmoe.bin"
STEPS=${STEPS:-950}
args=()
[ -n "${INIT:-}" ] && args+=(--init-from "$INIT" --data-start "${START:-0}")
[ -d "$OUT/checkpoints" ] && args+=(--resume)
[ -d "$OUT/checkpoints" ] && [ "${FORCE:-0}" = 1 ] && args+=(--force)
exec "$OUT/mixmoe.bin" pretrain --config base --tokenizer models/base/tokenizer.json \
  --steps "$STEPS" --batch-tokens 8192 --seq 128 --micro-tokens 2048 --lr "${LR:-2e-3}" --warmup 0.03 \
  --checkpoint-every 20 --keep-checkpoints 3 --log-every 5 --threads "${THREADS:-2}" --seed 0 --out "$OUT" "${args[@]}" \
  "$DATA"/mono/{en,cs,de,ru,tr,zh,fi,et}.txt "$DATA"/parallel/train.{cs,de,ru,tr,zh,fi,et}-en.tsv
