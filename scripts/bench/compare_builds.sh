#!/usr/bin/env bash
# Compares release builds of mixmoe on the same benchmarks, alternating (A B C ... A B C ...), and
# prints the median tokens/s per case and build with the ratio to the first build.
#   scripts/bench/compare_builds.sh ROUNDS NAME=BINARY [NAME=BINARY ...]     (THREADS=n, OUT=file, CFG=small)
# Builds of this tree with other flags, e.g.:
#   swift build -c release --scratch-path /tmp/b-haswell  (with MIXMOE_TARGET_CPU=haswell in the environment)
#   swift build -c release --scratch-path /tmp/b-unchecked -Xswiftc -Ounchecked
# Cases: bench train --method full, --method stage2 (8 x 256 tokens), bench decode batch 1 and 8.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=$1; shift
T=${THREADS:-2}; CFG=${CFG:-small}
out=${OUT:-$(mktemp)}
: > "$out"
cases=(
  "train full|bench train --config $CFG --method full --threads $T --reps 3"
  "train stage2|bench train --config $CFG --method stage2 --threads $T --reps 3"
  "decode b1|bench decode --config $CFG --batch 1 --threads $T --reps 3"
  "decode b8|bench decode --config $CFG --batch 8 --threads $T --reps 3"
)
for r in $(seq "$ROUNDS"); do
  for c in "${cases[@]}"; do
    IFS='|' read -r name args <<<"$c"
    for b in "$@"; do
      bname=${b%%=*}; bin=${b#*=}
      # shellcheck disable=SC2086
      echo "{\"round\": $r, \"case\": \"$name\", \"build\": \"$bname\", \"result\": $($bin $args 2>/dev/null | tail -1)}" | tee -a "$out"
    done
  done
done
python3 - "$out" "$@" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
builds = [b.split("=", 1)[0] for b in sys.argv[2:]]
print("| case | " + " | ".join(f"{b} (tok/s)" for b in builds) + " | " + " | ".join(f"{b} / {builds[0]}" for b in builds[1:]) + " |")
print("|---|" + "---|" * (2 * len(builds) - 1))
for case in dict.fromkeys(r["case"] for r in rows):
    med = [statistics.median(r["result"]["tokens_per_s"] for r in rows if r["case"] == case and r["build"] == b) for b in builds]
    print(f"| {case} | " + " | ".join(f"{m:.1f}" for m in med) + " | " + " | ".join(f"{m / med[0]:.2f}" for m in med[1:]) + " |")
PY
