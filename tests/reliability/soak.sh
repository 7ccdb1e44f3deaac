#!/usr/bin/env bash
# Soak test: SWEEPS `runner sweep --jobs 2` processes started together on one
# database over one grid of POINTS tiny points. Holds when every point has
# exactly one finished run, no run failed, no log mentions "database is locked",
# and integrity_check is ok. Prints the time lost waiting for the write lock
# (every connection reports it with RUNNER_LOCK_STATS=1).
#   tests/reliability/soak.sh [SWEEPS=4] [POINTS=40]
source "$(dirname "$0")/common.sh"
sweeps=${1:-4}
points=${2:-40}
seeds=4
lrs=$(((points + seeds - 1) / seeds))
points=$((lrs * seeds))
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
db=$work/results.db
cp "$base_experiment" "$work/base.yaml"
lr_list=$(awk -v n="$lrs" 'BEGIN { for (i = 1; i <= n; i++) printf "%s%.3f", (i > 1 ? ", " : ""), 0.01 * i }')
cat >"$work/grid.yaml" <<GRID
base: base.yaml
sweep: soak
grid:
  train.optimizer.lr: [$lr_list]
  data.limit: ["{train: 128, test: 64}"]
  train.epochs: [1]
  train.batch_size: [64]
seeds: [1, 2, 3, 4]
name: "soak-lr{train.optimizer.lr}-s{seed}"
GRID

export RUNNER_LOCK_STATS=1
start=$(date +%s.%N)
pids=()
for i in $(seq "$sweeps"); do
  "$RUNNER" sweep "$work/grid.yaml" --jobs 2 --db "$db" >"$work/sweep-$i.log" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
wall=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
[ "$status" -eq 0 ] || fail "a sweep failed: $(tail -n 5 "$work"/sweep-*.log)"

logs=("$work"/sweep-*.log "$work"/logs/soak/*.log)
! grep -l "database is locked" "${logs[@]}" || fail "\"database is locked\" in the logs above"
[ "$(sql "$db" 'PRAGMA integrity_check')" = ok ] || fail "integrity_check"
finished=$(sql "$db" "SELECT count(*) FROM runs WHERE status = 'finished'")
distinct=$(sql "$db" "SELECT count(DISTINCT name) FROM runs WHERE status = 'finished'")
other=$(sql "$db" "SELECT count(*) FROM runs WHERE status != 'finished'")
[ "$finished" -eq "$points" ] && [ "$distinct" -eq "$points" ] && [ "$other" -eq 0 ] ||
  fail "$finished finished runs for $distinct of $points points, $other other runs"
read -r waited waits < <(cat "${logs[@]}" | sed -n 's/^lock-stats: .* waited \([0-9.]*\) s .*(\([0-9]*\) waits)$/\1 \2/p' |
                         awk '{ s += $1; n += $2 } END { printf "%.3f %d\n", s, n }')
echo "soak: $sweeps sweeps x --jobs 2 on one database, $points points: each finished exactly once, no failed run," \
  "no 'database is locked', integrity_check ok; ${wall}s wall; $waits lock waits, ${waited}s waiting for the lock" \
  "in all processes together"
