# Sourced by the scripts that time or train for long: build for this CPU family when it has
# AVX2 + FMA (4-17% faster, docs/PERFORMANCE.md "Compiler flags"); MIXMOE_TARGET_CPU=generic
# (or any other value) in the environment wins.
if [ -z "${MIXMOE_TARGET_CPU:-}" ] && grep -qw avx2 /proc/cpuinfo 2>/dev/null && grep -qw fma /proc/cpuinfo 2>/dev/null; then
  export MIXMOE_TARGET_CPU=haswell
fi
