// The database schema, one step per version, and the migration that applies
// the missing steps to an older database.
#include <SQLiteCpp/SQLiteCpp.h>

#include "runner/base/errors.h"
#include "runner/store/sqlite_util.h"
#include "runner/store/store.h"

namespace runner {

namespace {

// Each version is a step from the one before; migrate() applies the missing
// steps in one transaction. A new version appends a step and bumps kSchemaVersion.
const char* const kSchemaV1 = R"SQL(
CREATE TABLE runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  experiment_file TEXT,
  config_yaml TEXT NOT NULL,
  config_json TEXT NOT NULL,
  config_hash TEXT NOT NULL,
  git_commit TEXT,
  git_dirty INTEGER,
  host TEXT,
  pid INTEGER,
  torch_version TEXT,
  device TEXT,
  threads INTEGER,
  params INTEGER,
  seed INTEGER,
  epochs_planned INTEGER,
  epochs_done INTEGER NOT NULL DEFAULT 0,
  target_test_acc REAL,
  sweep TEXT,
  checkpoint TEXT,
  started_at TEXT NOT NULL,
  finished_at TEXT,
  status TEXT NOT NULL CHECK (status IN ('running','finished','failed','diverged','interrupted')),
  error TEXT,
  final_test_acc REAL,
  best_test_acc REAL,
  final_train_acc REAL,
  final_test_loss REAL,
  target_met INTEGER
);
CREATE INDEX runs_by_hash ON runs(config_hash, seed);
CREATE TABLE epochs (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  epoch INTEGER NOT NULL,
  train_loss REAL, train_acc REAL, test_loss REAL, test_acc REAL, lr REAL, seconds REAL,
  PRIMARY KEY (run_id, epoch)
);
CREATE TABLE class_results (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  class_index INTEGER NOT NULL, class_name TEXT, correct INTEGER, total INTEGER, accuracy REAL,
  PRIMARY KEY (run_id, class_index)
);
CREATE TABLE confusion (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  true_class INTEGER NOT NULL, predicted_class INTEGER NOT NULL, count INTEGER NOT NULL,
  PRIMARY KEY (run_id, true_class, predicted_class)
);
CREATE TABLE misclassified (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  test_index INTEGER NOT NULL, true_class INTEGER NOT NULL, predicted_class INTEGER NOT NULL,
  PRIMARY KEY (run_id, test_index)
);
-- One row per run with the keys people compare by; plain sqlite3 can group it.
CREATE VIEW run_summary AS
SELECT r.id, r.name, r.status, r.sweep,
       json_extract(r.config_json, '$.model.norm') AS norm,
       r.seed, r.params, r.epochs_done AS epochs,
       r.final_test_acc, r.best_test_acc, r.final_train_acc,
       r.final_train_acc - r.final_test_acc AS train_test_gap,
       (SELECT avg(e.seconds) FROM epochs e WHERE e.run_id = r.id) AS seconds_per_epoch,
       r.target_met, r.started_at, r.finished_at
FROM runs r;
-- BN vs LN vs GN over finished runs: SELECT * FROM norm_comparison;
CREATE VIEW norm_comparison AS
SELECT norm, count(*) AS runs, max(params) AS params, max(epochs) AS epochs,
       round(avg(final_test_acc), 2) AS final_test_acc,
       round(avg(best_test_acc), 2) AS best_test_acc,
       round(avg(final_train_acc), 2) AS final_train_acc,
       round(avg(train_test_gap), 2) AS train_test_gap,
       round(avg(seconds_per_epoch), 1) AS seconds_per_epoch,
       sum(target_met) AS target_met
FROM run_summary WHERE status = 'finished' GROUP BY norm ORDER BY norm;
)SQL";

// Version 2: a run identity that survives merging databases, and sweep point claims.
const char* const kSchemaV2 = R"SQL(
ALTER TABLE runs ADD COLUMN uuid TEXT;
UPDATE runs SET uuid = lower(hex(randomblob(16))) WHERE uuid IS NULL;
CREATE UNIQUE INDEX runs_by_uuid ON runs(uuid);
CREATE TABLE sweep_points (
  sweep TEXT NOT NULL,
  point_key TEXT NOT NULL,
  config_hash TEXT NOT NULL,
  config_json TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('running','finished','failed','diverged','interrupted')),
  host TEXT,
  pid INTEGER,
  run_id INTEGER,
  updated_at TEXT,
  PRIMARY KEY (sweep, point_key)
);
)SQL";

// Version 3: validation metrics (data.validation) per epoch and per run.
const char* const kSchemaV3 = R"SQL(
ALTER TABLE epochs ADD COLUMN val_loss REAL;
ALTER TABLE epochs ADD COLUMN val_acc REAL;
ALTER TABLE runs ADD COLUMN final_val_acc REAL;
DROP VIEW norm_comparison;
DROP VIEW run_summary;
CREATE VIEW run_summary AS
SELECT r.id, r.name, r.status, r.sweep,
       json_extract(r.config_json, '$.model.norm') AS norm,
       r.seed, r.params, r.epochs_done AS epochs,
       r.final_test_acc, r.best_test_acc, r.final_train_acc,
       r.final_train_acc - r.final_test_acc AS train_test_gap,
       (SELECT avg(e.seconds) FROM epochs e WHERE e.run_id = r.id) AS seconds_per_epoch,
       r.target_met, r.started_at, r.finished_at, r.final_val_acc
FROM runs r;
CREATE VIEW norm_comparison AS
SELECT norm, count(*) AS runs, max(params) AS params, max(epochs) AS epochs,
       round(avg(final_test_acc), 2) AS final_test_acc,
       round(avg(best_test_acc), 2) AS best_test_acc,
       round(avg(final_train_acc), 2) AS final_train_acc,
       round(avg(train_test_gap), 2) AS train_test_gap,
       round(avg(seconds_per_epoch), 1) AS seconds_per_epoch,
       sum(target_met) AS target_met,
       round(avg(final_val_acc), 2) AS final_val_acc
FROM run_summary WHERE status = 'finished' GROUP BY norm ORDER BY norm;
)SQL";

// Version 4: norm_comparison averages the runs of one experiment only: configs
// equal but for the norm, the seed and what config_hash leaves out (name,
// description, data.root, train.threads/device/layout), as `runner compare`
// groups. Before, it averaged every network with the same norm together.
const char* const kSchemaV4 = R"SQL(
DROP VIEW norm_comparison;
CREATE VIEW norm_comparison AS
SELECT s.norm, min(s.id) AS first_run, group_concat(DISTINCT s.sweep) AS sweeps,
       count(*) AS runs, max(s.params) AS params, max(s.epochs) AS epochs,
       round(avg(s.final_test_acc), 2) AS final_test_acc,
       round(avg(s.best_test_acc), 2) AS best_test_acc,
       round(avg(s.final_train_acc), 2) AS final_train_acc,
       round(avg(s.train_test_gap), 2) AS train_test_gap,
       round(avg(s.seconds_per_epoch), 1) AS seconds_per_epoch,
       sum(s.target_met) AS target_met,
       round(avg(s.final_val_acc), 2) AS final_val_acc
FROM run_summary s JOIN runs r ON r.id = s.id
WHERE s.status = 'finished'
GROUP BY s.norm,
         CASE WHEN json_valid(r.config_json)
              THEN json_remove(r.config_json, '$.model.norm', '$.train.seed', '$.name', '$.description', '$.data.root',
                               '$.train.threads', '$.train.device', '$.train.layout')
              ELSE r.config_json END
ORDER BY s.norm, first_run;
)SQL";

// Version 5: a sampled search records the points it will never train, with
// why (over budget, a shape that does not fit): status 'rejected' and a
// reason. SQLite cannot change a CHECK in place, so the table is rebuilt.
const char* const kSchemaV5 = R"SQL(
CREATE TABLE sweep_points_v5 (
  sweep TEXT NOT NULL,
  point_key TEXT NOT NULL,
  config_hash TEXT NOT NULL,
  config_json TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('running','finished','failed','diverged','interrupted','rejected')),
  host TEXT,
  pid INTEGER,
  run_id INTEGER,
  updated_at TEXT,
  reason TEXT,
  PRIMARY KEY (sweep, point_key)
);
INSERT INTO sweep_points_v5 (sweep, point_key, config_hash, config_json, status, host, pid, run_id, updated_at)
  SELECT sweep, point_key, config_hash, config_json, status, host, pid, run_id, updated_at FROM sweep_points;
DROP TABLE sweep_points;
ALTER TABLE sweep_points_v5 RENAME TO sweep_points;
)SQL";

// Version 6: a search describes itself (method, halving metric, rung lengths,
// searched keys and their distributions), so compare and the report can show
// its rungs and label a search chosen on test from the database alone.
const char* const kSchemaV6 = R"SQL(
CREATE TABLE searches (
  sweep TEXT PRIMARY KEY,
  method TEXT NOT NULL,       -- random | sobol
  metric TEXT,                -- successive halving's metric (val_acc | test_acc); NULL without halving
  eta INTEGER,
  rung_epochs TEXT,           -- JSON array, rung 0 first; NULL without halving
  space TEXT NOT NULL,        -- JSON array of {"key": K, "kind": uniform | log_uniform | int | choice}
  file TEXT,
  updated_at TEXT
);
)SQL";

}  // namespace

const char* const kSchemaSteps[kSchemaVersion] = {kSchemaV1, kSchemaV2, kSchemaV3, kSchemaV4, kSchemaV5, kSchemaV6};

const char* schema_step(int to) {
  if (to < 1 || to > kSchemaVersion) throw StoreError("no schema version " + std::to_string(to));
  return kSchemaSteps[to - 1];
}

void Store::migrate() {
  guarded(path_, "cannot create or migrate the schema", [&] {
    SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
    const int version = db_->execAndGet("PRAGMA user_version").getInt();
    if (version > kSchemaVersion)
      throw StoreError(path_ + ": schema version " + std::to_string(version) + " is newer than this runner's (" +
                       std::to_string(kSchemaVersion) + "); use a newer runner");
    if (version == 0 && db_->execAndGet("SELECT count(*) FROM sqlite_master").getInt() > 0)
      throw StoreError(path_ + ": not a runner results database (it has other tables)");
    for (int step = version; step < kSchemaVersion; ++step) db_->exec(kSchemaSteps[step]);
    if (version != kSchemaVersion) db_->exec("PRAGMA user_version = " + std::to_string(kSchemaVersion));
    tx.commit();
    return 0;
  });
}

}  // namespace runner
