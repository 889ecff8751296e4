#!/usr/bin/env bash
# The 1B-scale measurements of docs/PERFORMANCE.md ("1B scale"): every command of the pipeline on a
# random model of Llama-3.2-1B's shape (peak RSS from /usr/bin/time -v, the memory plan of each
# training stage), then decoding and a stage-2 step against PyTorch eager.
#   scripts/bench/bench_1b.sh [WORK] [DATA]      (about 70 minutes and 25 GB of disk on 2 cores)
# PARTS="f32 bf16" (the default) runs both parts; PARTS=bf16 reruns only the bf16 part (--dtype bf16:
# weight matrices held in bf16, compute in fp32) on the models an earlier f32 part left in WORK.
# DATA is a corpus folder with mono/L.txt and parallel/{train,test}.L-en.tsv (default: the shipped
# data/demo; docs/PERFORMANCE.md was measured on the full corpus of the same layout).
# Writes WORK/results.jsonl (one JSON object per measurement) and prints a table at the end.
# Pause other work on the machine first: the timings assume idle cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/tools/build_env.sh
WORK=${1:-runs/bench-1b}
DATA=${2:-data/demo}
swift build -c release >/dev/null
mkdir -p "$WORK"
BIN="$WORK/mixmoe"
cp .build/release/mixmoe "$BIN"
OUT="$WORK/results.jsonl"
PARTS=${PARTS:-"f32 bf16"}
[[ $PARTS == *f32* ]] && : >"$OUT"
# small inputs: 3,000 lines of monolingual text, 2,000 pairs of two directions, 8 test sentences
head -3000 "$DATA/mono/en.txt" >"$WORK/mono.en.txt"; head -3000 "$DATA/mono/de.txt" >"$WORK/mono.de.txt"
head -2000 "$DATA/parallel/train.de-en.tsv" >"$WORK/par.de-en.tsv"; head -2000 "$DATA/parallel/train.cs-en.tsv" >"$WORK/par.cs-en.tsv"
head -8 "$DATA/parallel/test.de-en.tsv" | cut -f2 >"$WORK/src.de"

# measure NAME CMD...: runs CMD under /usr/bin/time -v and appends {command, seconds, peak_rss_gb}
measure() {
  local name=$1; shift
  echo "== $name: $*" >&2
  /usr/bin/time -v "$@" >"$WORK/$name.out" 2>"$WORK/$name.time" || { tail -5 "$WORK/$name.time" >&2; exit 1; }
  python3 - "$name" "$WORK/$name.time" >>"$OUT" <<'PY'
import json, re, sys
t = open(sys.argv[2]).read()
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) * 1024
w = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", t).group(1).split(":")
secs = sum(float(x) * 60 ** i for i, x in enumerate(reversed(w)))
tok = [float(m) for m in re.findall(r"(\d+) tok/s", t)]
print(json.dumps(dict(case="command", command=sys.argv[1], seconds=secs, peak_rss_gb=rss / 1e9,
                      tokens_per_s_last_step=tok[-1] if tok else None)))
PY
}
plan() {  # plan NAME ARGS...: the --dry-run total in GB
  local name=$1; shift
  "$BIN" "$@" --dry-run | tee "$WORK/$name.plan" >&2
  python3 -c 'import json,re,sys; t=open(sys.argv[2]).read(); print(json.dumps(dict(case="plan", command=sys.argv[1], planned_gb=float(re.search(r"total\s+([\d.]+) GB", t).group(1)))))' "$name" "$WORK/$name.plan" >>"$OUT"
}
T=(--steps 3 --batch-tokens 1024 --micro-tokens 1024 --seq 256 --log-every 1 --threads 2)
if [[ $PARTS == *f32* ]]; then
rm -rf "$WORK"/{dense,moe,s1,s2}
measure init "$BIN" init --config llama-3.2-1b --out "$WORK/dense" --tokenizer models/base/tokenizer.json
measure forward "$BIN" forward --model "$WORK/dense" --ids 1,2,3,4,5,6,7,8,9,10 --threads 2
measure upcycle "$BIN" upcycle --model "$WORK/dense" --out "$WORK/moe" --experts 4 --every 4
plan stage1 train --stage 1 --model "$WORK/moe" --out "$WORK/s1" "${T[@]}" "$WORK"/mono.{en,de}.txt
measure stage1 "$BIN" train --stage 1 --model "$WORK/moe" --out "$WORK/s1" "${T[@]}" "$WORK"/mono.{en,de}.txt
plan stage2 train --stage 2 --model "$WORK/s1" --out "$WORK/s2" "${T[@]}" "$WORK"/par.{de,cs}-en.tsv
measure stage2 "$BIN" train --stage 2 --model "$WORK/s1" --out "$WORK/s2" "${T[@]}" "$WORK"/par.{de,cs}-en.tsv
measure translate sh -c "'$BIN' translate --model '$WORK/s2' --from de --to en --max-ratio 0.5 --threads 2 < '$WORK/src.de'"
rm -rf "$WORK"/s1/checkpoints "$WORK"/s2/checkpoints

# decoding (32-token prompts, 32 new tokens) and a stage-2 step, mixmoe then PyTorch eager
"$BIN" bench memory --threads 2 >>"$OUT"
for b in 1 8; do
  "$BIN" bench decode --config llama-3.2-1b --batch $b --prompt 32 --new-tokens 32 --reps 3 --threads 2 >>"$OUT"
  "$BIN" bench decode --config llama-3.2-1b --model "$WORK/s2" --batch $b --prompt 32 --new-tokens 32 --reps 3 --threads 2 >>"$OUT"
  python3 scripts/bench/bench_pytorch.py decode --config llama-3.2-1b --batch $b --prompt 32 --new-tokens 32 --reps 3 --threads 2 >>"$OUT"
done
"$BIN" bench train --config llama-3.2-1b --method stage2 --batch 4 --seq 256 --reps 2 --threads 2 >>"$OUT"
python3 scripts/bench/bench_pytorch.py train --config llama-3.2-1b --method stage2 --batch 4 --seq 256 --reps 2 --threads 2 >>"$OUT"
fi

if [[ $PARTS == *bf16* ]]; then
B=(--dtype bf16)
measure forward-bf16 "$BIN" forward --model "$WORK/dense" --ids 1,2,3,4,5,6,7,8,9,10 --threads 2 "${B[@]}"
plan stage1-bf16 train --stage 1 --model "$WORK/moe" --out "$WORK/s1b" "${T[@]}" "${B[@]}" "$WORK"/mono.{en,de}.txt
measure stage1-bf16 "$BIN" train --stage 1 --model "$WORK/moe" --out "$WORK/s1b" "${T[@]}" "${B[@]}" "$WORK"/mono.{en,de}.txt
plan stage2-bf16 train --stage 2 --model "$WORK/s1" --out "$WORK/s2b" "${T[@]}" "${B[@]}" "$WORK"/par.{de,cs}-en.tsv
measure stage2-bf16 "$BIN" train --stage 2 --model "$WORK/s1" --out "$WORK/s2b" "${T[@]}" "${B[@]}" "$WORK"/par.{de,cs}-en.tsv
measure translate-bf16 sh -c "'$BIN' translate --model '$WORK/s2' --from de --to en --max-ratio 0.5 --threads 2 --dtype bf16 < '$WORK/src.de'"
rm -rf "$WORK"/{s1b,s2b}
"$BIN" bench memory --threads 2 >>"$OUT"
for b in 1 8; do
  "$BIN" bench decode --config llama-3.2-1b --batch $b --prompt 32 --new-tokens 32 --reps 3 --threads 2 "${B[@]}" >>"$OUT"
  "$BIN" bench decode --config llama-3.2-1b --model "$WORK/s2" --batch $b --prompt 32 --new-tokens 32 --reps 3 --threads 2 "${B[@]}" >>"$OUT"
  python3 scripts/bench/bench_pytorch.py decode --config llama-3.2-1b --batch $b --prompt 32 --new-tokens 32 --reps 3 --threads 2 "${B[@]}" >>"$OUT"
done
fi
cat "$OUT"
