#!/usr/bin/env bash
# Rebuild data/demo/ (committed): a small, deterministic subset of the full corpus for the demo and
# tests. Parallel train/dev/test are already shuffled upstream, so the first lines are a random
# sample; mono files are in document order, so every k-th line is taken.
set -euo pipefail
src=${1:?"usage: scripts/runs/make_demo_data.sh CORPUS_DIR (the full corpus: parallel/{train,dev,test}.L-en.tsv, mono/L.txt)"}
dst="$(dirname "$0")/../../data/demo"
mkdir -p "$dst/parallel" "$dst/mono"
for l in cs de ru tr zh fi et; do
  head -n 3000 "$src/parallel/train.$l-en.tsv" > "$dst/parallel/train.$l-en.tsv"
  head -n 200 "$src/parallel/dev.$l-en.tsv" > "$dst/parallel/dev.$l-en.tsv"
  head -n 200 "$src/parallel/test.$l-en.tsv" > "$dst/parallel/test.$l-en.tsv"
done
for l in en cs de ru tr zh fi et; do
  n=$(wc -l < "$src/mono/$l.txt")
  k=$(( n / 2000 > 1 ? n / 2000 : 1 ))
  awk -v k="$k" 'NR % k == 0 && c < 2000 { print; c++ }' "$src/mono/$l.txt" > "$dst/mono/$l.txt"
done
cp "$src/README.md" "$dst/SOURCE-README.md"
du -sh "$dst"
