#!/usr/bin/env bash
# Kill test for sweeps: starts `runner sweep --jobs 2` on a grid of small points
# and SIGKILLs it at a random moment, KILLS times — sometimes the sweep process
# alone (its runs get SIGTERM and checkpoint), sometimes the sweep with all its
# runs at once (as a node failure would). After every kill integrity_check is
# ok; when a round's sweep is finally left to finish, every point of the grid
# has exactly one finished run. A round that finishes before it is killed
# starts another round under a new sweep name.
#   tests/reliability/kill_sweep.sh [KILLS=20] [SEED]
source "$(dirname "$0")/common.sh"
kills_wanted=${1:-20}
RANDOM=${2:-$$}
work=$(mktemp -d)
sid=""
# On exit, stop whatever the last sweep left running (never "-s 0": that is our
# own session). Written so that errexit cannot turn a no-match into a failure.
cleanup() {
  if [ -n "$sid" ]; then pkill -KILL -s "$sid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
db=$work/results.db
cp "$base_experiment" "$work/base.yaml"

write_grid() {  # $1: sweep name
  cat >"$work/grid.yaml" <<GRID
base: base.yaml
sweep: $1
grid:
  model.norm: [batch, group]
  train.optimizer.lr: [0.02, 0.05]
  data.limit: ["{train: 300, test: 100}"]
  train.epochs: [2]
seeds: [1, 2, 3]
name: "k-{model.norm}-lr{train.optimizer.lr}-s{seed}"
GRID
}
points=12

# Each point exactly once: 12 names with one finished run each, none with two.
check_round() {  # $1: sweep name
  local bad
  bad=$(sql "$db" "SELECT name || ' x' || count(*) FROM runs WHERE sweep = '$1' AND status = 'finished'
                   GROUP BY name HAVING count(*) != 1")
  [ -z "$bad" ] || fail "sweep $1: points finished more than once: $bad"
  local done
  done=$(sql "$db" "SELECT count(DISTINCT name) FROM runs WHERE sweep = '$1' AND status = 'finished'")
  [ "$done" -eq "$points" ] || fail "sweep $1: $done of $points points finished"
}

kills=0 round=0 whole_group=0 all_runs_killed=0
start_all=$(date +%s)
while [ "$kills" -lt "$kills_wanted" ]; do
  round=$((round + 1))
  sweep=killed-$round
  write_grid "$sweep"
  while [ "$kills" -lt "$kills_wanted" ]; do
    setsid "$RUNNER" sweep "$work/grid.yaml" --jobs 2 --db "$db" >"$work/sweep.log" 2>&1 &
    pid=$!
    sid=$pid  # setsid made the sweep a session leader
    sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.3f", 0.5 + 4.0 * r / 32768 }')"
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" || fail "sweep $sweep failed: $(tail -5 "$work/sweep.log")"
      break  # this round finished before the kill: check it, start another
    fi
    if [ $((RANDOM % 2)) -eq 0 ]; then
      pkill -KILL -s "$sid" || true  # the sweep and its runs at once
      whole_group=$((whole_group + 1))
    else
      kill -KILL "$pid"
    fi
    wait "$pid" 2>/dev/null || true
    # Wait until the session is gone (orphaned runs checkpoint on SIGTERM and exit).
    for _ in $(seq 100); do pgrep -s "$sid" >/dev/null || break; sleep 0.1; done
    kills=$((kills + 1))
    [ "$(sql "$db" 'PRAGMA integrity_check')" = ok ] || fail "integrity_check after sweep kill $kills"
    printf '\rsweep kills %d/%d (round %d)' "$kills" "$kills_wanted" "$round" >&2
  done
  # Let this round's sweep finish undisturbed, then count.
  "$RUNNER" sweep "$work/grid.yaml" --jobs 2 --db "$db" >"$work/final.log" 2>&1 ||
    fail "final sweep of $sweep: $(tail -5 "$work/final.log")"
  check_round "$sweep"
done
echo >&2
killed_runs=$(sql "$db" "SELECT count(*) FROM runs WHERE status != 'finished'")
echo "kill_sweep: $kills SIGKILLs of a 12-point sweep ($whole_group with all its runs) over $round round(s);" \
  "every point finished exactly once in each round; $killed_runs killed runs left visibly unfinished;" \
  "integrity_check ok after every kill; $(($(date +%s) - start_all))s"
