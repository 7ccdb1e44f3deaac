#!/usr/bin/env bash
# The accuracy the suite's learning tests reach, along every CPU code path this
# machine can take and over several seeds: what their thresholds must hold on
# any machine (docs/reliability.md, "thresholds on any CPU").
#   scripts/isa_spread.sh [SEEDS [TEST]]   (8 seeds; TEST: only labels containing it)
# Prints one line per (test, code path): min, median and max over the seeds.
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${1:-8}
ONLY=${2:-}  # run only the tests whose label contains this
RUNNER=${RUNNER:-build/runner}
export CIFAR10_ROOT=${CIFAR10_ROOT:-$(cd .. && pwd)/shared/data/cifar-10-batches-bin}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The code paths: none capped (this CPU's best), AVX2 as on a CPU without
# AVX-512 (our kernels' AVX2 and baseline copies), and baseline x86-64 throughout.
paths=(
  "native|"
  "avx2+avx2|ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 RUNNER_NORM_ISA=avx2"
  "avx2+default|ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 RUNNER_NORM_ISA=default"
  "sse41+default|ONEDNN_MAX_CPU_ISA=SSE41 ATEN_CPU_CAPABILITY=default RUNNER_NORM_ISA=default"
)
# The tests' settings (the test and its threshold | metric | --set values, ';'-separated).
base="data.root=$CIFAR10_ROOT;train.epochs=2"
tests=(
  "test_train two epochs >25|test|$base;data.limit.train=2000;data.limit.test=500;train.threads=2;data.augment=[{random_crop: {padding: 4}}, horizontal_flip];train.eval.tta=flip"
  "test_cli runner run >20|test|$base;data.limit.train=2000;data.limit.test=500;train.threads=1"
  "test_train validation >10|val|$base;data.limit.train=2000;data.limit.test=500;train.threads=2;data.validation=300;train.epochs=3"
)

stats() { sort -n | awk '{v[NR]=$1} END {printf "min %6.2f  median %6.2f  max %6.2f  (n=%d)", v[1], (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2), v[NR], NR}'; }

for t in "${tests[@]}"; do
  IFS='|' read -r label metric sets <<<"$t"
  [[ "$label" == *"$ONLY"* ]] || continue
  args=()
  IFS=';' read -ra values <<<"$sets"
  for v in "${values[@]}"; do args+=(--set "$v"); done
  for p in "${paths[@]}"; do
    IFS='|' read -r pname penv <<<"$p"
    : >"$tmp/acc"
    for seed in $(seq 1 "$SEEDS"); do
      # shellcheck disable=SC2086  # the env assignments split into words
      out=$(env $penv "$RUNNER" run experiments/session8/bn.yaml "${args[@]}" --set train.seed="$seed" \
              --db "$tmp/r.db" 2>&1)
      if [ "$metric" = val ]; then
        # the last epoch's validation accuracy
        grep -o 'val loss [0-9.]* acc [0-9.]*%' <<<"$out" | sed 's/.* acc //; s/%//' | tail -1 >>"$tmp/acc"
      else
        grep -o 'final test acc [0-9.]*%' <<<"$out" | sed 's/final test acc //; s/%//' >>"$tmp/acc"
      fi
    done
    printf '%-32s %-14s %s\n' "$label" "$pname" "$(stats <"$tmp/acc")"
  done
done
