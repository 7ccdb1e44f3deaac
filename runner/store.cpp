#include "runner/store.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <thread>
#include <filesystem>

#include "runner/errors.h"

namespace runner {

namespace {

// Version 1. A later version adds a step to migrate() and bumps kSchemaVersion.
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
  return r;
}

const char* const kRunColumns =
    "r.id, r.name, r.experiment_file, r.config_yaml, r.config_json, r.config_hash, r.git_commit, r.git_dirty, "
    "r.host, r.pid, r.torch_version, r.device, r.threads, r.params, r.seed, r.epochs_planned, r.epochs_done, "
    "r.target_test_acc, r.sweep, r.checkpoint, r.started_at, r.finished_at, r.status, r.error, r.final_test_acc, "
    "r.best_test_acc, r.final_train_acc, r.final_test_loss, r.target_met, "
    "coalesce((SELECT avg(e.seconds) FROM epochs e WHERE e.run_id = r.id), 0)";

}  // namespace

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Store::Store(const std::string& path, int busy_timeout_ms) : path_(path) {
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
      db_->setBusyTimeout(busy_timeout_ms);  // other writers hold the lock for moments: wait, don't fail
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

Store::~Store() = default;

void Store::migrate() {
  guarded(path_, "cannot create or migrate the schema", [&] {
    SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
    const int version = db_->execAndGet("PRAGMA user_version").getInt();
    if (version > kSchemaVersion)
      throw StoreError(path_ + ": schema version " + std::to_string(version) + " is newer than this runner's (" +
                       std::to_string(kSchemaVersion) + "); use a newer runner");
    if (version == 0) {
      const bool has_tables = db_->execAndGet("SELECT count(*) FROM sqlite_master").getInt() > 0;
      if (has_tables) throw StoreError(path_ + ": not a runner results database (it has other tables)");
      db_->exec(kSchemaV1);
      db_->exec("PRAGMA user_version = " + std::to_string(kSchemaVersion));
    }
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
                        "target_test_acc, sweep, started_at, status) "
                        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,'running')");
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
    SQLite::Statement c(*db_, "UPDATE runs SET checkpoint = ? WHERE id = ?");
    c.bind(1, checkpoint_dir + "/run-" + std::to_string(id) + ".pt"), c.bind(2, id);
    c.exec();
    tx.commit();
    return id;
  });
}

void Store::record_epoch(int64_t run_id, const EpochRow& e) {
  guarded(path_, "cannot record epoch " + std::to_string(e.epoch), [&] {
    SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
    SQLite::Statement q(*db_, "INSERT OR REPLACE INTO epochs VALUES (?,?,?,?,?,?,?,?)");
    q.bind(1, run_id), q.bind(2, e.epoch), q.bind(3, e.train_loss), q.bind(4, e.train_acc);
    q.bind(5, e.test_loss), q.bind(6, e.test_acc), q.bind(7, e.lr), q.bind(8, e.seconds);
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
                        "best_test_acc = (SELECT max(test_acc) FROM epochs WHERE run_id = ?4) "
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

std::vector<EpochRow> Store::epochs(int64_t run_id) const {
  return guarded(path_, "cannot read epochs", [&] {
    std::vector<EpochRow> rows;
    SQLite::Statement q(*db_,
                        "SELECT epoch, train_loss, train_acc, test_loss, test_acc, lr, seconds FROM epochs "
                        "WHERE run_id = ? ORDER BY epoch");
    q.bind(1, run_id);
    while (q.executeStep()) {
      EpochRow e;
      e.epoch = q.getColumn(0).getInt64();
      e.train_loss = q.getColumn(1).getDouble(), e.train_acc = q.getColumn(2).getDouble();
      e.test_loss = q.getColumn(3).getDouble(), e.test_acc = q.getColumn(4).getDouble();
      e.lr = q.getColumn(5).getDouble(), e.seconds = q.getColumn(6).getDouble();
      rows.push_back(e);
    }
    return rows;
  });
}

}  // namespace runner
