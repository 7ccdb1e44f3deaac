#include "runner/store.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <thread>
#include <filesystem>

#include "runner/errors.h"

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

const char* const kSteps[] = {kSchemaV1, kSchemaV2, kSchemaV3, kSchemaV4};
static_assert(sizeof kSteps / sizeof kSteps[0] == kSchemaVersion, "one step per schema version");

template <class F>
auto guarded(const std::string& path, const std::string& what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const SQLite::Exception& e) {
    throw StoreError(path + ": " + what + ": " + e.what());
  }
}

std::optional<double> opt_double(const SQLite::Column& c) {
  if (c.isNull()) return std::nullopt;
  return c.getDouble();
}

RunRow read_run(SQLite::Statement& q) {
  RunRow r;
  int i = 0;
  r.id = q.getColumn(i++).getInt64();
  RunRecord& rec = r.record;
  rec.name = q.getColumn(i++).getString();
  rec.experiment_file = q.getColumn(i++).getString();
  rec.config_yaml = q.getColumn(i++).getString();
  rec.config_json = q.getColumn(i++).getString();
  rec.config_hash = q.getColumn(i++).getString();
  rec.git_commit = q.getColumn(i++).getString();
  rec.git_dirty = q.getColumn(i).isNull() ? -1 : q.getColumn(i).getInt();
  ++i;
  rec.host = q.getColumn(i++).getString();
  r.pid = q.getColumn(i++).getInt64();
  rec.torch_version = q.getColumn(i++).getString();
  rec.device = q.getColumn(i++).getString();
  rec.threads = q.getColumn(i++).getInt64();
  rec.params = q.getColumn(i++).getInt64();
  rec.seed = q.getColumn(i++).getInt64();
  rec.epochs = q.getColumn(i++).getInt64();
  r.epochs_done = q.getColumn(i++).getInt64();
  rec.target_test_acc = q.getColumn(i++).getDouble();
  rec.sweep = q.getColumn(i++).getString();
  r.checkpoint = q.getColumn(i++).getString();
  r.started_at = q.getColumn(i++).getString();
  r.finished_at = q.getColumn(i++).getString();
  r.status = q.getColumn(i++).getString();
  r.error = q.getColumn(i++).getString();
  r.final_test_acc = opt_double(q.getColumn(i++));
  r.best_test_acc = opt_double(q.getColumn(i++));
  r.final_train_acc = opt_double(q.getColumn(i++));
  r.final_test_loss = opt_double(q.getColumn(i++));
  if (!q.getColumn(i).isNull()) r.target_met = q.getColumn(i).getInt() != 0;
  ++i;
  r.seconds_per_epoch = q.getColumn(i++).getDouble();
  r.final_val_acc = opt_double(q.getColumn(i++));
  return r;
}

const char* const kRunColumns =
    "r.id, r.name, r.experiment_file, r.config_yaml, r.config_json, r.config_hash, r.git_commit, r.git_dirty, "
    "r.host, r.pid, r.torch_version, r.device, r.threads, r.params, r.seed, r.epochs_planned, r.epochs_done, "
    "r.target_test_acc, r.sweep, r.checkpoint, r.started_at, r.finished_at, r.status, r.error, r.final_test_acc, "
    "r.best_test_acc, r.final_train_acc, r.final_test_loss, r.target_met, "
    "coalesce((SELECT avg(e.seconds) FROM epochs e WHERE e.run_id = r.id), 0), r.final_val_acc";

}  // namespace

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

const char* schema_step(int to) {
  if (to < 1 || to > kSchemaVersion) throw StoreError("no schema version " + std::to_string(to));
  return kSteps[to - 1];
}

Store::Store(const std::string& path, int busy_timeout_ms) : path_(path), busy_timeout_ms_(busy_timeout_ms) {
  namespace fs = std::filesystem;
  const fs::path parent = fs::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty() && !fs::exists(parent)) {
    fs::create_directories(parent, ec);
    if (ec) throw StoreError(path + ": cannot create the folder " + parent.string() + ": " + ec.message());
  }
  // Two processes creating the same new file race on the switch to WAL, which
  // SQLite answers with SQLITE_BUSY without waiting: retry that step briefly.
  for (int attempt = 0;; ++attempt) {
    try {
      db_ = std::make_unique<SQLite::Database>(path_, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
      // Other writers hold the lock for moments: wait, don't fail; our own
      // handler (not setBusyTimeout) so the time lost to locking is measured.
      sqlite3_busy_handler(db_->getHandle(), &Store::on_busy, this);
      db_->exec("PRAGMA journal_mode=WAL");
      db_->exec("PRAGMA synchronous=NORMAL");
      db_->exec("PRAGMA foreign_keys=ON");
      break;
    } catch (const SQLite::Exception& e) {
      const bool busy = e.getErrorCode() == SQLITE_BUSY || e.getErrorCode() == SQLITE_LOCKED;
      if (!busy || attempt * 50 >= busy_timeout_ms)
        throw StoreError(path_ + ": cannot open the results database: " + e.what());
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  migrate();
}

Store::~Store() {
  if (lock_waits_.waits > 0 && std::getenv("RUNNER_LOCK_STATS") != nullptr)
    std::fprintf(stderr, "lock-stats: %s waited %.3f s for the database lock (%lld waits)\n", path_.c_str(),
                 lock_waits_.seconds, static_cast<long long>(lock_waits_.waits));
}

int Store::on_busy(void* self, int attempt) {
  // Sleeps 1, 2, 5, 10, 20, 50, 100 ms, then 100 ms each, until the timeout.
  static constexpr int kDelays[] = {1, 2, 5, 10, 20, 50, 100};
  auto* store = static_cast<Store*>(self);
  int waited = 0;
  for (int i = 0; i < attempt; ++i) waited += kDelays[std::min(i, 6)];
  if (waited >= store->busy_timeout_ms_) return 0;  // give up: SQLite returns SQLITE_BUSY
  const int delay = kDelays[std::min(attempt, 6)];
  const auto start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(delay));
  store->lock_waits_.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (attempt == 0) ++store->lock_waits_.waits;
  return 1;
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
    for (int step = version; step < kSchemaVersion; ++step) db_->exec(kSteps[step]);
    if (version != kSchemaVersion) db_->exec("PRAGMA user_version = " + std::to_string(kSchemaVersion));
    tx.commit();
    return 0;
  });
}

int64_t Store::begin_run(const RunRecord& rec, const std::string& checkpoint_dir) {
  return guarded(path_, "cannot record the run", [&] {
    SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
    SQLite::Statement q(*db_,
                        "INSERT INTO runs (name, experiment_file, config_yaml, config_json, config_hash, git_commit, "
                        "git_dirty, host, pid, torch_version, device, threads, params, seed, epochs_planned, "
                        "target_test_acc, sweep, started_at, status, uuid) "
                        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,'running',lower(hex(randomblob(16))))");
    int i = 1;
    q.bind(i++, rec.name);
    q.bind(i++, rec.experiment_file);
    q.bind(i++, rec.config_yaml);
    q.bind(i++, rec.config_json);
    q.bind(i++, rec.config_hash);
    q.bind(i++, rec.git_commit);
    if (rec.git_dirty < 0)
      q.bind(i++);
    else
      q.bind(i++, rec.git_dirty);
    q.bind(i++, rec.host);
    q.bind(i++, static_cast<int64_t>(getpid()));
    q.bind(i++, rec.torch_version);
    q.bind(i++, rec.device);
    q.bind(i++, rec.threads);
    q.bind(i++, rec.params);
    q.bind(i++, rec.seed);
    q.bind(i++, rec.epochs);
    q.bind(i++, rec.target_test_acc);
    q.bind(i++, rec.sweep);
    q.bind(i++, utc_now());
    q.exec();
    const int64_t id = db_->getLastInsertRowid();
    // The uuid keeps two databases in one folder (sharing checkpoints/) from
    // resuming from each other's run-1 checkpoint.
    SQLite::Statement c(*db_, "UPDATE runs SET checkpoint = ? || '/run-' || id || '-' || substr(uuid, 1, 8) || '.pt' "
                              "WHERE id = ?");
    c.bind(1, checkpoint_dir), c.bind(2, id);
    c.exec();
    tx.commit();
    return id;
  });
}

void Store::record_epoch(int64_t run_id, const EpochRow& e) {
  guarded(path_, "cannot record epoch " + std::to_string(e.epoch), [&] {
    SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
    SQLite::Statement q(*db_,
                        "INSERT OR REPLACE INTO epochs (run_id, epoch, train_loss, train_acc, test_loss, test_acc, lr, "
                        "seconds, val_loss, val_acc) VALUES (?,?,?,?,?,?,?,?,?,?)");
    q.bind(1, run_id), q.bind(2, e.epoch), q.bind(3, e.train_loss), q.bind(4, e.train_acc);
    q.bind(5, e.test_loss), q.bind(6, e.test_acc), q.bind(7, e.lr), q.bind(8, e.seconds);
    if (e.val_acc) q.bind(9, *e.val_loss), q.bind(10, *e.val_acc);
    q.exec();
    SQLite::Statement u(*db_, "UPDATE runs SET epochs_done = ? WHERE id = ?");
    u.bind(1, e.epoch), u.bind(2, run_id);
    u.exec();
    tx.commit();
    return 0;
  });
}

void Store::reopen_run(int64_t run_id, int64_t keep_epochs) {
  guarded(path_, "cannot reopen run " + std::to_string(run_id), [&] {
    SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
    SQLite::Statement d(*db_, "DELETE FROM epochs WHERE run_id = ? AND epoch > ?");
    d.bind(1, run_id), d.bind(2, keep_epochs);
    d.exec();
    SQLite::Statement u(*db_,
                        "UPDATE runs SET status = 'running', error = NULL, finished_at = NULL, pid = ?, "
                        "epochs_done = ? WHERE id = ?");
    u.bind(1, static_cast<int64_t>(getpid())), u.bind(2, keep_epochs), u.bind(3, run_id);
    u.exec();
    tx.commit();
    return 0;
  });
}

void Store::end_run(int64_t run_id, const std::string& status, const std::string& error, const TestResults* results) {
  guarded(path_, "cannot record the end of run " + std::to_string(run_id), [&] {
    SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
    SQLite::Statement u(*db_,
                        "UPDATE runs SET status = ?1, error = ?2, finished_at = ?3, "
                        "final_test_acc = (SELECT test_acc FROM epochs WHERE run_id = ?4 ORDER BY epoch DESC LIMIT 1), "
                        "final_test_loss = (SELECT test_loss FROM epochs WHERE run_id = ?4 ORDER BY epoch DESC LIMIT 1), "
                        "final_train_acc = (SELECT train_acc FROM epochs WHERE run_id = ?4 ORDER BY epoch DESC LIMIT 1), "
                        "best_test_acc = (SELECT max(test_acc) FROM epochs WHERE run_id = ?4), "
                        "final_val_acc = (SELECT val_acc FROM epochs WHERE run_id = ?4 ORDER BY epoch DESC LIMIT 1) "
                        "WHERE id = ?4");
    u.bind(1, status);
    if (error.empty())
      u.bind(2);
    else
      u.bind(2, error);
    u.bind(3, utc_now());
    u.bind(4, run_id);
    u.exec();
    // Only a finished run says whether it met its target.
    SQLite::Statement t(*db_,
                        "UPDATE runs SET target_met = CASE WHEN status = 'finished' THEN "
                        "final_test_acc >= target_test_acc END WHERE id = ?");
    t.bind(1, run_id);
    t.exec();
    if (results != nullptr) {
      SQLite::Statement c(*db_, "INSERT OR REPLACE INTO class_results VALUES (?,?,?,?,?,?)");
      for (size_t k = 0; k < results->class_total.size(); ++k) {
        c.bind(1, run_id), c.bind(2, static_cast<int64_t>(k));
        c.bind(3, k < results->class_names.size() ? results->class_names[k] : std::to_string(k));
        c.bind(4, results->class_correct[k]), c.bind(5, results->class_total[k]);
        c.bind(6, results->class_total[k] ? 100.0 * static_cast<double>(results->class_correct[k]) /
                                                static_cast<double>(results->class_total[k])
                                          : 0.0);
        c.exec(), c.reset();
      }
      SQLite::Statement m(*db_, "INSERT OR REPLACE INTO confusion VALUES (?,?,?,?)");
      for (size_t a = 0; a < results->confusion.size(); ++a)
        for (size_t b = 0; b < results->confusion[a].size(); ++b) {
          m.bind(1, run_id), m.bind(2, static_cast<int64_t>(a)), m.bind(3, static_cast<int64_t>(b));
          m.bind(4, results->confusion[a][b]);
          m.exec(), m.reset();
        }
      SQLite::Statement x(*db_, "INSERT OR REPLACE INTO misclassified VALUES (?,?,?,?)");
      for (size_t i = 0; i < results->misclassified.size(); ++i) {
        x.bind(1, run_id), x.bind(2, results->misclassified[i].first);
        x.bind(3, results->true_labels[i]), x.bind(4, results->misclassified[i].second);
        x.exec(), x.reset();
      }
    }
    tx.commit();
    return 0;
  });
}

Claim Store::claim_point(const PointRow& p, const std::function<bool(const std::string&, int64_t)>& alive) {
  return guarded(path_, "cannot claim sweep point " + p.point_key, [&] {
    SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
    SQLite::Statement q(*db_, "SELECT status, host, pid FROM sweep_points WHERE sweep = ? AND point_key = ?");
    q.bind(1, p.sweep), q.bind(2, p.point_key);
    if (q.executeStep()) {
      const std::string status = q.getColumn(0).getString();
      if (status == "finished" || status == "diverged") return Claim::Done;
      if (status == "running" && alive(q.getColumn(1).getString(), q.getColumn(2).getInt64())) return Claim::Busy;
    }
    q.reset();
    SQLite::Statement u(*db_,
                        "INSERT INTO sweep_points (sweep, point_key, config_hash, config_json, status, host, pid, "
                        "updated_at) VALUES (?1, ?2, ?3, ?4, 'running', ?5, ?6, ?7) "
                        "ON CONFLICT(sweep, point_key) DO UPDATE SET status = 'running', host = ?5, pid = ?6, "
                        "config_hash = ?3, config_json = ?4, updated_at = ?7");
    u.bind(1, p.sweep), u.bind(2, p.point_key), u.bind(3, p.config_hash), u.bind(4, p.config_json);
    u.bind(5, p.host), u.bind(6, p.pid), u.bind(7, utc_now());
    u.exec();
    tx.commit();
    return Claim::Claimed;
  });
}

void Store::update_point(const std::string& sweep, const std::string& key, const std::string& status, int64_t pid,
                         int64_t run_id) {
  guarded(path_, "cannot update sweep point " + key, [&] {
    SQLite::Statement u(*db_,
                        "UPDATE sweep_points SET status = ?, pid = ?, run_id = nullif(?, 0), updated_at = ? "
                        "WHERE sweep = ? AND point_key = ?");
    u.bind(1, status), u.bind(2, pid), u.bind(3, run_id), u.bind(4, utc_now()), u.bind(5, sweep), u.bind(6, key);
    u.exec();
    return 0;
  });
}

std::vector<PointRow> Store::sweep_points(const std::string& sweep) const {
  return guarded(path_, "cannot read sweep " + sweep, [&] {
    std::vector<PointRow> rows;
    SQLite::Statement q(*db_,
                        "SELECT sweep, point_key, config_hash, config_json, status, coalesce(host, ''), "
                        "coalesce(pid, 0), coalesce(run_id, 0) FROM sweep_points WHERE sweep = ?");
    q.bind(1, sweep);
    while (q.executeStep()) {
      PointRow r;
      r.sweep = q.getColumn(0).getString(), r.point_key = q.getColumn(1).getString();
      r.config_hash = q.getColumn(2).getString(), r.config_json = q.getColumn(3).getString();
      r.status = q.getColumn(4).getString(), r.host = q.getColumn(5).getString();
      r.pid = q.getColumn(6).getInt64(), r.run_id = q.getColumn(7).getInt64();
      rows.push_back(r);
    }
    return rows;
  });
}

std::pair<int64_t, std::string> Store::latest_run(const std::string& sweep, const std::string& config_hash) const {
  return guarded(path_, "cannot read runs", [&] {
    SQLite::Statement q(*db_, "SELECT id, status FROM runs WHERE sweep = ? AND config_hash = ? ORDER BY id DESC LIMIT 1");
    q.bind(1, sweep), q.bind(2, config_hash);
    if (!q.executeStep()) return std::pair<int64_t, std::string>{0, ""};
    return std::pair<int64_t, std::string>{q.getColumn(0).getInt64(), q.getColumn(1).getString()};
  });
}

MergeCounts Store::merge_from(const std::string& other_path) {
  if (!std::filesystem::exists(other_path)) throw StoreError(other_path + ": no such database to merge");
  { Store other(other_path); }  // brings it to this schema version
  return guarded(path_, "cannot merge " + other_path, [&] {
    MergeCounts counts;
    SQLite::Statement attach(*db_, "ATTACH DATABASE ? AS src");
    attach.bind(1, other_path);
    attach.exec();
    try {
      SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
      const std::string columns =
          "name, experiment_file, config_yaml, config_json, config_hash, git_commit, git_dirty, host, pid, "
          "torch_version, device, threads, params, seed, epochs_planned, epochs_done, target_test_acc, sweep, "
          "checkpoint, started_at, finished_at, status, error, final_test_acc, best_test_acc, final_train_acc, "
          "final_test_loss, target_met, uuid, final_val_acc";
      SQLite::Statement missing(*db_, "SELECT id, uuid FROM src.runs WHERE uuid NOT IN (SELECT uuid FROM main.runs)");
      std::vector<std::pair<int64_t, std::string>> to_copy;
      while (missing.executeStep()) to_copy.emplace_back(missing.getColumn(0).getInt64(), missing.getColumn(1).getString());
      counts.skipped = db_->execAndGet("SELECT count(*) FROM src.runs").getInt64() - static_cast<int64_t>(to_copy.size());
      for (const auto& [old_id, uuid] : to_copy) {
        SQLite::Statement copy(*db_, "INSERT INTO main.runs (" + columns + ") SELECT " + columns +
                                         " FROM src.runs WHERE id = ?");
        copy.bind(1, old_id);
        copy.exec();
        const int64_t new_id = db_->getLastInsertRowid();
        for (const char* table : {"epochs", "class_results", "confusion", "misclassified"}) {
          // Every child table has run_id first; copy the other columns as they are.
          SQLite::Statement cols(*db_, std::string("SELECT group_concat(name, ', ') FROM pragma_table_info('") + table +
                                           "') WHERE name != 'run_id'");
          cols.executeStep();
          const std::string rest = cols.getColumn(0).getString();
          SQLite::Statement child(*db_, std::string("INSERT INTO main.") + table + " (run_id, " + rest + ") SELECT ?, " +
                                            rest + " FROM src." + table + " WHERE run_id = ?");
          child.bind(1, new_id), child.bind(2, old_id);
          child.exec();
        }
        ++counts.added;
      }
      db_->exec(
          "INSERT INTO main.sweep_points (sweep, point_key, config_hash, config_json, status, host, pid, run_id, "
          "updated_at) SELECT p.sweep, p.point_key, p.config_hash, p.config_json, p.status, p.host, p.pid, "
          "(SELECT m.id FROM main.runs m JOIN src.runs r ON r.uuid = m.uuid WHERE r.id = p.run_id), p.updated_at "
          "FROM src.sweep_points p WHERE 1 "
          "ON CONFLICT(sweep, point_key) DO UPDATE SET status = excluded.status, run_id = excluded.run_id, "
          "host = excluded.host, pid = excluded.pid, updated_at = excluded.updated_at "
          "WHERE main.sweep_points.status != 'finished'");
      tx.commit();
    } catch (...) {
      db_->exec("DETACH DATABASE src");
      throw;
    }
    db_->exec("DETACH DATABASE src");
    return counts;
  });
}

std::vector<RunRow> Store::runs() const {
  return guarded(path_, "cannot read runs", [&] {
    std::vector<RunRow> rows;
    SQLite::Statement q(*db_, std::string("SELECT ") + kRunColumns + " FROM runs r ORDER BY r.id");
    while (q.executeStep()) rows.push_back(read_run(q));
    return rows;
  });
}

RunRow Store::run(int64_t run_id) const {
  return guarded(path_, "cannot read run " + std::to_string(run_id), [&] {
    SQLite::Statement q(*db_, std::string("SELECT ") + kRunColumns + " FROM runs r WHERE r.id = ?");
    q.bind(1, run_id);
    if (!q.executeStep()) throw StoreError(path_ + ": no run with id " + std::to_string(run_id));
    return read_run(q);
  });
}

TestResults Store::test_results(int64_t run_id) const {
  return guarded(path_, "cannot read test results", [&] {
    TestResults r;
    SQLite::Statement c(*db_, "SELECT class_name, correct, total FROM class_results WHERE run_id = ? ORDER BY class_index");
    c.bind(1, run_id);
    while (c.executeStep()) {
      r.class_names.push_back(c.getColumn(0).getString());
      r.class_correct.push_back(c.getColumn(1).getInt64());
      r.class_total.push_back(c.getColumn(2).getInt64());
    }
    r.confusion.assign(r.class_names.size(), std::vector<int64_t>(r.class_names.size(), 0));
    SQLite::Statement m(*db_, "SELECT true_class, predicted_class, count FROM confusion WHERE run_id = ?");
    m.bind(1, run_id);
    while (m.executeStep()) {
      const auto t = static_cast<size_t>(m.getColumn(0).getInt64()), p = static_cast<size_t>(m.getColumn(1).getInt64());
      if (t < r.confusion.size() && p < r.confusion.size()) r.confusion[t][p] = m.getColumn(2).getInt64();
    }
    SQLite::Statement x(*db_,
                        "SELECT test_index, predicted_class, true_class FROM misclassified WHERE run_id = ? "
                        "ORDER BY test_index");
    x.bind(1, run_id);
    while (x.executeStep()) {
      r.misclassified.emplace_back(x.getColumn(0).getInt64(), x.getColumn(1).getInt64());
      r.true_labels.push_back(x.getColumn(2).getInt64());
    }
    return r;
  });
}

std::vector<EpochRow> Store::epochs(int64_t run_id) const {
  return guarded(path_, "cannot read epochs", [&] {
    std::vector<EpochRow> rows;
    SQLite::Statement q(*db_,
                        "SELECT epoch, train_loss, train_acc, test_loss, test_acc, lr, seconds, val_loss, val_acc "
                        "FROM epochs WHERE run_id = ? ORDER BY epoch");
    q.bind(1, run_id);
    while (q.executeStep()) {
      EpochRow e;
      e.epoch = q.getColumn(0).getInt64();
      e.train_loss = q.getColumn(1).getDouble(), e.train_acc = q.getColumn(2).getDouble();
      e.test_loss = q.getColumn(3).getDouble(), e.test_acc = q.getColumn(4).getDouble();
      e.lr = q.getColumn(5).getDouble(), e.seconds = q.getColumn(6).getDouble();
      e.val_loss = opt_double(q.getColumn(7)), e.val_acc = opt_double(q.getColumn(8));
      rows.push_back(e);
    }
    return rows;
  });
}

}  // namespace runner
