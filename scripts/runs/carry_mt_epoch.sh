#!/usr/bin/env bash
# Carries the shipped translator's long run (scripts/runs/train_mt_epoch.sh) across machines: the run
# outlives any one machine only through the repository, so at the end of a working session its
# newest checkpoint (weights, AdamW moments, data cursor, schedule position: an exact resume
# point), its dev-loss curve and its segment record are committed under CARRY, and the next
# machine restores them before resuming.
#
#   scripts/runs/carry_mt_epoch.sh save OUT_DIR [CARRY_DIR]     after stopping the run (kill -TERM, or
#                                                          kill -KILL once a checkpoint is written)
#   scripts/runs/carry_mt_epoch.sh restore OUT_DIR [CARRY_DIR]  before scripts/runs/train_mt_epoch.sh
#
# CARRY_DIR defaults to models/checkpoints/mt-epoch-run. The best step's model (OUT/best) is
# carried only when it is not the checkpoint's own step; otherwise restore rebuilds it from the
# checkpoint's weights. segments.tsv gets one line per save: the steps this machine ran, when.
set -euo pipefail
cmd=${1:?usage: $0 save|restore OUT_DIR [CARRY_DIR]}
out=${2:?usage: $0 save|restore OUT_DIR [CARRY_DIR]}
carry=${3:-models/checkpoints/mt-epoch-run}
base=models/checkpoints/base-c4  # the run's starting model: its tokenizer files
step_of() { basename "$1" | sed 's/^step-0*//; s/^$/0/'; }
best_step() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["step"])' "$1"; }
case $cmd in
save)
  ckpt=$(ls -d "$out"/checkpoints/step-* | sort | tail -1)
  [ -f "$ckpt/state.json" ] || { echo "no complete checkpoint in $out/checkpoints" >&2; exit 1; }
  tmp=$(mktemp -d "$carry.tmp.XXXX")
  mkdir -p "$tmp/checkpoints"
  cp -r "$ckpt" "$tmp/checkpoints/"
  [ -f "$out/dev_loss.json" ] && cp "$out/dev_loss.json" "$tmp/"
  if [ -f "$out/best/best_step.json" ] && [ "$(best_step "$out/best/best_step.json")" != "$(step_of "$ckpt")" ]; then
    cp -r "$out/best" "$tmp/best"
  elif [ -f "$out/best/best_step.json" ]; then
    cp "$out/best/best_step.json" "$tmp/best_step.json"
  fi
  first=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("first_step", 0))' "$out/segment.json" 2>/dev/null || echo 0)
  [ -f "$carry/segments.tsv" ] && cp "$carry/segments.tsv" "$tmp/" || printf 'from_step\tto_step\tsaved_utc\thost\n' >"$tmp/segments.tsv"
  printf '%s\t%s\t%s\t%s\n' "$first" "$(step_of "$ckpt")" "$(date -u +%FT%TZ)" "$(hostname)" >>"$tmp/segments.tsv"
  cat >"$tmp/README.md" <<'TXT'
# The shipped translator's one-epoch run: its resume point

Not a model to use. This folder carries the long fine-tuning run of issue 35
(`scripts/runs/train_mt_epoch.sh`) from one machine to the next: the newest checkpoint (weights, AdamW
moments, data cursor, schedule position), the dev-loss curve so far (`dev_loss.json`), the best
step (`best_step.json`, or `best/` when it is not the checkpoint's step) and `segments.tsv`, one
line per machine that ran part of the run. Restore it with `scripts/runs/carry_mt_epoch.sh restore
OUT`, then run `scripts/runs/train_mt_epoch.sh CORPUS OUT` to continue exactly where it stopped.
TXT
  rm -rf "$carry" && mv "$tmp" "$carry"
  echo "carried $(basename "$ckpt") into $carry ($(du -sh "$carry" | cut -f1))"
  ;;
restore)
  ckpt=$(ls -d "$carry"/checkpoints/step-* | sort | tail -1)
  [ -n "$ckpt" ] || { echo "nothing carried in $carry" >&2; exit 1; }
  if compgen -G "$out/checkpoints/step-*" >/dev/null; then echo "$out already has checkpoints; not overwriting" >&2; exit 1; fi
  mkdir -p "$out/checkpoints"
  cp -r "$ckpt" "$out/checkpoints/"
  [ -f "$carry/dev_loss.json" ] && cp "$carry/dev_loss.json" "$out/"
  if [ -d "$carry/best" ]; then
    cp -r "$carry/best" "$out/best"
  elif [ -f "$carry/best_step.json" ]; then  # the best step is the checkpoint's: its weights
    mkdir -p "$out/best"
    cp "$ckpt/config.json" "$ckpt/model.safetensors" "$carry/best_step.json" "$out/best/"
    cp "$base"/tokenizer.json "$base"/tokenizer_config.json "$base"/generation_config.json "$out/best/"
  fi
  printf '{"first_step": %s}\n' "$(step_of "$ckpt")" >"$out/segment.json"
  echo "restored $(basename "$ckpt") into $out; resume with scripts/runs/train_mt_epoch.sh"
  ;;
*) echo "usage: $0 save|restore OUT_DIR [CARRY_DIR]" >&2; exit 2 ;;
esac
