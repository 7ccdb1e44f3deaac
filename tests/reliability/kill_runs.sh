#!/usr/bin/env bash
# Kill test for runs: starts a small training run and SIGKILLs it at a random
# moment, KILLS times (sometimes the resume is killed too). After every kill:
# PRAGMA integrity_check is ok, the run is not shown as finished, and
# `runner resume` (or a rerun, when the kill came before the run was recorded)
# completes it with exactly the per-epoch metrics of an uninterrupted run.
#   tests/reliability/kill_runs.sh [KILLS=50] [SEED]
source "$(dirname "$0")/common.sh"
kills_wanted=${1:-50}
RANDOM=${2:-$$}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
db=$work/results.db

# The reference: one uninterrupted run, and how long it takes.
start=$(date +%s.%N)
"$RUNNER" run "$base_experiment" "${small_sets[@]}" --set name=reference --db "$db" >"$work/reference.log" 2>&1 ||
  fail "the reference run failed: $(tail -3 "$work/reference.log")"
duration=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.3f", e - s }')
# Every epoch's metrics of run $1, to 9 decimals (the resume must reproduce them exactly).
metrics_of() {
  sql "$db" "SELECT group_concat(printf('%d:%.9f:%.9f:%.9f:%.9f', epoch, train_loss, train_acc, test_loss, test_acc), ' ')
             FROM (SELECT * FROM epochs WHERE run_id = $1 ORDER BY epoch)"
}
reference=$(metrics_of 1)
echo "reference run: ${duration}s, epochs $reference"

kills=0 before_recorded=0 during_resume=0 finished_before_kill=0 late=0

# A kill that lands after the process recorded the run as finished (between its
# last write and its exit) is not a mid-run kill: the run must then be complete
# and equal to the reference. Returns 0 (true) for such a late kill.
late_kill() {
  [ -n "$1" ] && [ "$(sql "$db" "SELECT status FROM runs WHERE id = $1")" = finished ] || return 1
  [ "$(metrics_of "$1")" = "$reference" ] || fail "run $1 shows as finished after a kill but differs: $(metrics_of "$1")"
  late=$((late + 1))
  return 0
}
start_all=$(date +%s)
attempt=0
while [ "$kills" -lt "$kills_wanted" ]; do
  attempt=$((attempt + 1))
  name=killed-$attempt
  "$RUNNER" run "$base_experiment" "${small_sets[@]}" --set name="$name" --db "$db" >"$work/run.log" 2>&1 &
  pid=$!
  sleep "$(random_delay "$duration")"
  if ! kill -KILL "$pid" 2>/dev/null; then
    wait "$pid" || true
    finished_before_kill=$((finished_before_kill + 1))
    sql "$db" "DELETE FROM epochs WHERE run_id IN (SELECT id FROM runs WHERE name = '$name');
               DELETE FROM runs WHERE name = '$name'" >/dev/null 2>&1 || true
    continue  # not a kill: try again with another delay
  fi
  wait "$pid" 2>/dev/null || true
  [ "$(sql "$db" 'PRAGMA integrity_check')" = ok ] || fail "integrity_check after kill $((kills + 1))"
  id=$(sql "$db" "SELECT id FROM runs WHERE name = '$name'")
  if late_kill "$id"; then continue; fi
  kills=$((kills + 1))
  if [ -z "$id" ]; then
    # Killed before the run was recorded (while loading): nothing to resume, run it again.
    before_recorded=$((before_recorded + 1))
    "$RUNNER" run "$base_experiment" "${small_sets[@]}" --set name="$name" --db "$db" >"$work/rerun.log" 2>&1 ||
      fail "rerun after kill $kills: $(tail -3 "$work/rerun.log")"
    id=$(sql "$db" "SELECT id FROM runs WHERE name = '$name'")
  else
    status=$(sql "$db" "SELECT status FROM runs WHERE id = $id")
    [ "$status" != finished ] || fail "kill $kills: run $id shows as finished"
    # Half the time, kill the resume too before letting it finish.
    if [ $((RANDOM % 2)) -eq 0 ] && [ "$kills" -lt "$kills_wanted" ]; then
      "$RUNNER" resume "$id" --db "$db" >"$work/resume.log" 2>&1 &
      rpid=$!
      sleep "$(random_delay "$duration")"
      if kill -KILL "$rpid" 2>/dev/null; then
        wait "$rpid" 2>/dev/null || true
        [ "$(sql "$db" 'PRAGMA integrity_check')" = ok ] || fail "integrity_check after kill $((kills + 1)) (resume)"
        if ! late_kill "$id"; then kills=$((kills + 1)) during_resume=$((during_resume + 1)); fi
      else
        wait "$rpid" || true
      fi
    fi
    if [ "$(sql "$db" "SELECT status FROM runs WHERE id = $id")" != finished ]; then
      "$RUNNER" resume "$id" --db "$db" >"$work/resume.log" 2>&1 || fail "resume $id: $(tail -3 "$work/resume.log")"
    fi
  fi
  [ "$(sql "$db" "SELECT status FROM runs WHERE id = $id")" = finished ] || fail "run $id did not finish"
  got=$(metrics_of "$id")
  [ "$got" = "$reference" ] || fail "run $id after kill $kills: epochs $got, uninterrupted run: $reference"
  printf '\rkills %d/%d' "$kills" "$kills_wanted" >&2
done
echo >&2
runs=$(sql "$db" "SELECT count(*) FROM runs WHERE status = 'finished'")
echo "kill_runs: $kills SIGKILLs mid-run survived ($during_resume during a resume, $before_recorded before the run was" \
  "recorded; not counted: $late kills after the run had recorded its end, $finished_before_kill after the process exited);" \
  "$runs finished runs, all equal to the uninterrupted run, none finished early;" \
  "integrity_check ok after every kill; $(($(date +%s) - start_all))s"
