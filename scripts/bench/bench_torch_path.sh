#!/usr/bin/env bash
# The PyTorch training path (python/mixmoe_torch/train.py) beside mixmoe on the same stage, on this
# machine: Mix-MoE stage 2 and dense SFT of base-c4 (8 M parameters), 4,096 padded tokens per
# step, --seq 128, THREADS threads, both sides alternated for ROUNDS rounds; tokens/s from each
# run's train_log.jsonl (padded tokens / seconds of the training loop; loading excluded).
#
#   scripts/bench/bench_torch_path.sh [ROUNDS] [STEPS] [THREADS]     (after swift build -c release)
set -euo pipefail
rounds=${1:-3} steps=${2:-20} threads=${3:-2}
cd "$(dirname "$0")/../.."
bin=.build/release/mixmoe
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
data=("$PWD"/data/demo/parallel/train.*-en.tsv)
base=$PWD/models/checkpoints/base-c4
"$bin" upcycle --model "$base" --out "$work/up" >/dev/null 2>&1
rate() { python3 -c "import json,sys; l=[json.loads(x) for x in open(sys.argv[1])]; print(round(l[-1]['tokens']/l[-1]['elapsed_s'],1))" "$1"; }
echo "round,case,mixmoe_tok_s,pytorch_tok_s,ratio"
for r in $(seq 1 "$rounds"); do
  for case in stage2 sft; do
    if [ "$case" = stage2 ]; then model=$work/up; stage=2; else model=$base; stage=sft; fi
    rm -rf "$work/m" "$work/p"
    if [ "$case" = stage2 ]; then
      "$bin" train --stage 2 --model "$model" --out "$work/m" --steps "$steps" --batch-tokens 4096 --micro-tokens 4096 --seq 128 \
        --lr 1e-3 --threads "$threads" "${data[@]}" >/dev/null 2>&1
    else
      "$bin" finetune --model "$model" --out "$work/m" --steps "$steps" --batch-tokens 4096 --micro-tokens 4096 --seq 128 \
        --lr 5e-4 --threads "$threads" "${data[@]}" >/dev/null 2>&1
    fi
    PYTHONPATH=python python3 -m mixmoe_torch.train --model "$model" --out "$work/p" --stage "$stage" "${data[@]}" \
      --steps "$steps" --batch-tokens 4096 --seq 128 --lr 1e-3 --threads "$threads" --device cpu >/dev/null 2>&1
    a=$(rate "$work/m/train_log.jsonl") b=$(rate "$work/p/train_log.jsonl")
    echo "$r,$case,$a,$b,$(python3 -c "print(round($a/$b,2))")"
  done
done
