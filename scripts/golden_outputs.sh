#!/usr/bin/env bash
# Writes what the runner prints for the committed experiments, grids and result
# databases into OUTDIR, one file per command, so that a refactoring can be shown
# to change no output: run it before and after, then `diff -r BEFORE AFTER`.
#   scripts/golden_outputs.sh RUNNER_BINARY OUTDIR
# Covers: `check` of every experiment (summary tables), `sweep --plan` of every
# grid and search (against each committed database; with --status and --best too), `sweep --slurm --dry-run`
# (the sbatch scripts), `runs`, `compare` and `report` on docs/results/*.db.
# Paths of this checkout and of the binary are replaced by <repo> and <runner>, a report's time by <time>, so
# two checkouts at different moments compare equal.
set -uo pipefail
runner=$(realpath "$1")
out=$(realpath -m "$2")
cd "$(dirname "$0")/.."
repo=$(pwd)
mkdir -p "$out"
export CIFAR10_ROOT=${CIFAR10_ROOT:-$repo/../shared/data/cifar-10-batches-bin}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
normalise() {  # this checkout's paths, and the time a report was written
  sed -e "s|$runner|<runner>|g" -e "s|$repo|<repo>|g" -e "s|$scratch|<scratch>|g" -e 's/written [0-9T:-]*Z/written <time>/'
}
record() {  # record NAME COMMAND...: stdout, stderr and the exit code, with paths normalised
  local name=$1; shift
  { "$@" 2>&1; echo "exit $?"; } | normalise >"$out/$name.txt"
}
for f in $(find experiments -name '*.yaml' | sort); do
  case "$f" in experiments/grids/*|experiments/search/*) continue ;; esac
  record "check_${f//\//_}" "$runner" check "$f"
done
for f in experiments/grids/*.yaml experiments/search/*.yaml results/*.yaml; do
  [ -f "$f" ] || continue
  grep -q '^base:' "$f" || continue
  for db in docs/results/*.db; do
    record "plan_${f//\//_}_$(basename "$db")" "$runner" sweep "$f" --plan --db "$db"
    record "status_${f//\//_}_$(basename "$db")" "$runner" sweep "$f" --status --db "$db"
    record "best_${f//\//_}_$(basename "$db")" "$runner" sweep "$f" --best --db "$db"
  done
  # The sbatch scripts, as --dry-run prints them.
  record "slurm_${f//\//_}" "$runner" sweep "$f" --slurm --dry-run --db "$scratch/r.db"
  rm -f "$scratch/r.db"
done
for db in docs/results/*.db; do
  b=$(basename "$db")
  record "runs_$b" "$runner" runs --db "$db"
  record "compare_norm_$b" "$runner" compare --by model.norm --db "$db"
  record "report_$b" "$runner" report --db "$db" --out "$scratch/report.html"
  [ -f "$scratch/report.html" ] && normalise <"$scratch/report.html" >"$out/report_$b.html"
  rm -f "$scratch/report.html"
done
record layers "$runner" layers
record help "$runner" --help
echo "$(ls "$out" | wc -l) outputs in $out"
