#include "runner/store/store.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <thread>

#include "runner/base/errors.h"
#include "runner/store/sqlite_util.h"

namespace runner {

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
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

Store::Store(const std::string& path, ReadOnly) : path_(path), busy_timeout_ms_(2000) {
  if (!std::filesystem::exists(path)) throw StoreError(path + ": no such results database");
  guarded(path_, "cannot open the results database to read", [&] {
    db_ = std::make_unique<SQLite::Database>(path_, SQLite::OPEN_READONLY);
    sqlite3_busy_handler(db_->getHandle(), &Store::on_busy, this);
    const int version = db_->execAndGet("PRAGMA user_version").getInt();
    if (version == 0) throw StoreError(path_ + ": not a runner results database (empty, or other tables)");
    if (version > kSchemaVersion)
      throw StoreError(path_ + ": schema version " + std::to_string(version) + " is newer than this runner's (" +
                       std::to_string(kSchemaVersion) + "); use a newer runner");
    if (version < kSchemaVersion)
      throw StoreError(path_ + ": schema version " + std::to_string(version) + " is older than this runner's (" +
                       std::to_string(kSchemaVersion) + "); runner runs --db FILE migrates it");
    return 0;
  });
}

std::unique_ptr<Store> Store::open_read_only(const std::string& path) {
  return std::unique_ptr<Store>(new Store(path, ReadOnly{}));
}

std::unique_ptr<Store> Store::open_to_look(const std::string& path) {
  if (!std::filesystem::exists(path))
    throw StoreError(path + ": no results database here yet (run an experiment first)");
  const int version = guarded(path, "cannot open the results database to read", [&] {
    return SQLite::Database(path, SQLite::OPEN_READONLY).execAndGet("PRAGMA user_version").getInt();
  });
  if (version > 0 && version < kSchemaVersion) {
    std::fprintf(stderr, "%s: schema version %d is older than this runner's (%d): migrating it in place\n",
                 path.c_str(), version, kSchemaVersion);
    return std::make_unique<Store>(path);
  }
  return open_read_only(path);
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
    SQLite::Statement c(*db_,
                        "UPDATE runs SET checkpoint = ? || '/run-' || id || '-' || substr(uuid, 1, 8) || '.pt' "
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

void Store::end_run(int64_t run_id, RunStatus status, const std::string& error, const TestResults* results) {
  guarded(path_, "cannot record the end of run " + std::to_string(run_id), [&] {
    SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
    SQLite::Statement u(
        *db_,
        "UPDATE runs SET status = ?1, error = ?2, finished_at = ?3, "
        "final_test_acc = (SELECT test_acc FROM epochs WHERE run_id = ?4 ORDER BY epoch DESC LIMIT 1), "
        "final_test_loss = (SELECT test_loss FROM epochs WHERE run_id = ?4 ORDER BY epoch DESC LIMIT 1), "
        "final_train_acc = (SELECT train_acc FROM epochs WHERE run_id = ?4 ORDER BY epoch DESC LIMIT 1), "
        "best_test_acc = (SELECT max(test_acc) FROM epochs WHERE run_id = ?4), "
        "final_val_acc = (SELECT val_acc FROM epochs WHERE run_id = ?4 ORDER BY epoch DESC LIMIT 1) "
        "WHERE id = ?4");
    u.bind(1, status_text(status));
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

}  // namespace runner
