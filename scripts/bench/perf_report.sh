#!/usr/bin/env bash
# Every measurement of docs/PERFORMANCE.md in one go (release build, quiet machine please):
# sgemm peak, the A/B comparison with PyTorch eager (scripts/bench/compare.sh), memory-read bandwidth,
# training memory, and the scaling table (context 256/512/1024 x 1/2 threads, with profiles).
# Raw JSON lines go to runs/perf/; the tables are printed as Markdown.
#   scripts/bench/perf_report.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/tools/build_env.sh
ROUNDS=${1:-3}
M=.build/release/mixmoe
swift build -c release >/dev/null
mkdir -p runs/perf
R=runs/perf
date -u +"%Y-%m-%d %H:%M UTC" > $R/date.txt
{ lscpu | grep -E "Model name|^CPU\(s\)|L2|L3"; python3 -c "import torch, transformers; print('torch', torch.__version__); print('transformers', transformers.__version__)"; swift --version 2>&1 | head -1; } > $R/machine.txt
$M bench gemm --config small --threads 2 > $R/gemm_before.jsonl
OUT=$R/compare.jsonl scripts/bench/compare.sh "$ROUNDS" small | tee $R/compare.txt
$M bench gemm --config small --threads 2 > $R/gemm_after.jsonl
$M bench gemm --config small --threads 1 > $R/gemm_1thread.jsonl
$M bench gemm --config small --threads 2 --all > $R/gemm_shapes.jsonl
: > $R/profile.jsonl
for m in full stage2; do $M bench train --config small --method $m --threads 2 --reps 3 --profile >> $R/profile.jsonl; done
MIXMOE_PROFILE=1 $M bench decode --config small --batch 8 --threads 2 --reps 3 > $R/decode_profile.jsonl 2> $R/decode_profile.txt
: > $R/memory.jsonl
for t in 1 2; do $M bench memory --threads $t >> $R/memory.jsonl; done
: > $R/scaling.jsonl
for t in 2 1; do
  for s in 256 512 1024; do
    $M bench train --config small --seq $s --batch $((2048 / s)) --threads $t --reps 3 --profile >> $R/scaling.jsonl
    python3 scripts/bench/bench_pytorch.py train --config small --seq $s --batch $((2048 / s)) --threads $t --reps 3 >> $R/scaling.jsonl
  done
done
python3 scripts/bench/perf_tables.py $R
