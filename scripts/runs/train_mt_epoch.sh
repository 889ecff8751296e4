#!/usr/bin/env bash
# The shipped translator's long run (issue 35): base-c4 fully fine-tuned for one epoch of every
# training pair of the full corpus (each pair once, in a direction drawn per pair), resumable. Run it again to resume (it passes
# --resume when OUT has a checkpoint). Pause it while timing anything else: kill -STOP / -CONT.
#
#   scripts/runs/train_mt_epoch.sh CORPUS_DIR OUT_DIR [MIXMOE_BINARY]
#
# CORPUS_DIR holds parallel/{train,dev,test}.L-en.tsv (the corpus data/demo was cut from).
# Training pairs sharing a segment with any dev or test pair are dropped (--exclude); the loss on
# 100 dev pairs per direction is evaluated every 500 steps (OUT/dev_loss.json, OUT/best/).
# One schedule for the whole run: 13,600 steps of 4,096 tokens (1.04 epochs of the 946,746
# training pairs left after deduplication that fit in 128 tokens, each pair once), peak lr 5e-4, 3% warm-up, cosine.
# A machine that ends before the run does: stop it (kill -TERM writes a checkpoint), then
# scripts/runs/carry_mt_epoch.sh save OUT and commit models/checkpoints/mt-epoch-run; on the next
# machine scripts/runs/carry_mt_epoch.sh restore OUT before running this again.
# Two threads at the lowest priority: it takes what the machine leaves idle. The thread count is
# part of the numerics, so every segment of the run must use the same (THREADS, default 2).
set -euo pipefail
corpus=${1:?usage: $0 CORPUS_DIR OUT_DIR [MIXMOE_BINARY]}
out=${2:?usage: $0 CORPUS_DIR OUT_DIR [MIXMOE_BINARY]}
bin=${3:-.build/release/mixmoe}
p=$corpus/parallel
langs="cs de et fi ru tr zh"
train=() held=() dev=()
for l in $langs; do
  train+=("$p/train.$l-en.tsv")
  held+=(--exclude "$p/dev.$l-en.tsv" --exclude "$p/test.$l-en.tsv")
  dev+=(--dev "$p/dev.$l-en.tsv")
done
resume=()
if compgen -G "$out/checkpoints/step-*" >/dev/null; then resume=(--resume); fi
exec "$bin" finetune --model models/checkpoints/base-c4 --out "$out" "${train[@]}" "${held[@]}" "${dev[@]}" \
  --eval-every 500 --dev-pairs 100 --steps 13600 --pair-directions one --lr 5e-4 --batch-tokens 4096 --micro-tokens 4096 \
  --checkpoint-every 250 --keep-checkpoints 2 --log-every 25 --threads "${THREADS:-2}" "${resume[@]}"
