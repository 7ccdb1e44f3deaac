#!/usr/bin/env bash
# runner ui at scale: a database of 1,000 finished runs x 20 epochs (real configs
# of the seed network: 3 norms x 10 learning rates x 34 seeds), then how long each
# page takes to answer (median and worst of 10 requests, curl) and its size.
#   bench/ui.sh [RUNNER]        (default build/runner; needs sqlite3 and curl)
set -euo pipefail
runner=$(realpath "${1:-build/runner}")
here=$(cd "$(dirname "$0")/.." && pwd)
# UI_BENCH_DIR=DIR keeps the database there (for a profiler); else a temporary folder, removed.
if [ -n "${UI_BENCH_DIR:-}" ]; then dir=$UI_BENCH_DIR; rm -rf "$dir"; mkdir -p "$dir"; keep=1; else dir=$(mktemp -d); keep=; fi
ui=; trap '[ -n "$ui" ] && kill $ui 2>/dev/null; [ -z "$keep" ] && rm -rf "$dir"' EXIT
db=$dir/big.db
# The current schema, empty: a copy of a committed database without its rows (the
# looking commands never create one).
sqlite3 "$here/docs/results/search.db" "VACUUM INTO '$db'"
for t in $(sqlite3 "$db" "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"); do
  sqlite3 "$db" "DELETE FROM $t"
done
yaml=$here/experiments/session8/bn.yaml
sqlite3 "$db" <<SQL
ATTACH '$here/docs/results/search.db' AS seed;  -- a recorded config of the seed network
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 999)
INSERT INTO runs (name, config_yaml, config_json, config_hash, started_at, finished_at, status, params, seed,
                  epochs_planned, epochs_done, final_test_acc, best_test_acc, final_train_acc, final_test_loss, uuid)
SELECT 'bench-' || i, CAST(readfile('$yaml') AS TEXT),
       json_set(json_set((SELECT config_json FROM seed.runs WHERE sweep = 'search-full' LIMIT 1),
                '$.model.norm', CASE i % 3 WHEN 0 THEN 'batch' WHEN 1 THEN 'layer' ELSE 'group' END),
                '$.train.optimizer.lr', 0.01 * (1 + (i / 3) % 10)),
       'h' || (i % 30), '2026-12-01T00:00:00Z', '2026-12-01T00:10:00Z', 'finished', 39056, 1 + i / 30, 20, 20,
       70 + (i % 17) * 0.5, 71 + (i % 17) * 0.5, 80, 0.9, lower(hex(randomblob(16)))
FROM n;
WITH RECURSIVE e(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM e WHERE k < 20)
INSERT INTO epochs SELECT r.id, e.k, 2.0 - e.k * 0.05, 40 + e.k * 2, 1.9 - e.k * 0.04, 38 + e.k * 1.9, 0.05, 12, NULL, NULL
FROM runs r, e;
SQL
echo "database: $(sqlite3 "$db" 'SELECT count(*) FROM runs') runs, $(sqlite3 "$db" 'SELECT count(*) FROM epochs') epochs, $(du -h "$db" | cut -f1)"
"$runner" ui --db "$db" --port 0 2> "$dir/ui.log" & ui=$!
for _ in $(seq 50); do grep -q 'Ctrl-C stops' "$dir/ui.log" 2>/dev/null && break; sleep 0.1; done
port=$(grep -o '127.0.0.1:[0-9]*' "$dir/ui.log" | cut -d: -f2)
printf '%-34s %10s %10s %10s\n' page median_ms worst_ms bytes
for path in / "/compare?by=model.norm" "/compare?by=model.norm&rank=test" /run/500 /api/state; do
  times=()
  for _ in $(seq 10); do times+=("$(curl -s -o "$dir/out" -w '%{time_total}' "http://127.0.0.1:$port$path")"); done
  sorted=$(printf '%s\n' "${times[@]}" | sort -n)
  printf '%-34s %10.1f %10.1f %10s\n' "$path" "$(echo "$sorted" | sed -n 5p | awk '{print $1*1000}')" \
    "$(echo "$sorted" | tail -1 | awk '{print $1*1000}')" "$(stat -c %s "$dir/out")"
done
