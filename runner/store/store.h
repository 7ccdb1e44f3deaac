// Stage 4: the results database. The only code that touches SQLite. Receives
// and returns plain records; no LibTorch. Schema is versioned and migrated in a
// transaction; WAL and a busy timeout let several processes write one file.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runner/base/run_status.h"

namespace SQLite {
class Database;
}

namespace runner {

constexpr int kSchemaVersion = 6;

/// The SQL that takes a database from schema version `to - 1` to `to` (1-based);
/// the migration tests build old databases with it.
const char* schema_step(int to);

/// What is known when a run starts.
struct RunRecord {
  std::string name;
  std::string experiment_file;
  std::string config_yaml;
  std::string config_json;
  std::string config_hash;
  std::string git_commit;  ///< empty outside a git checkout
  int git_dirty = -1;      ///< -1 unknown
  std::string host;
  std::string torch_version;
  std::string device;
  int64_t threads = 0;
  int64_t params = 0;
  int64_t seed = 0;
  int64_t epochs = 0;  ///< planned
  double target_test_acc = 0;
  std::string sweep;
};

struct EpochRow {
  int64_t epoch = 0;
  double train_loss = 0, train_acc = 0, test_loss = 0, test_acc = 0, lr = 0, seconds = 0;
  std::optional<double> val_loss, val_acc;  ///< runs with data.validation only
};

/// A stored run, as listed by `runner runs`.
struct RunRow {
  int64_t id = 0;
  RunRecord record;
  RunStatus status = RunStatus::Running;
  std::string error;
  std::string started_at, finished_at;
  std::string checkpoint;
  int64_t pid = 0;
  int64_t epochs_done = 0;
  std::optional<double> final_test_acc, best_test_acc, final_train_acc, final_test_loss;
  std::optional<double> final_val_acc;  ///< with data.validation only
  std::optional<bool> target_met;
  double seconds_per_epoch = 0;
};

/// Per-class results and misclassified samples of a finished run.
struct TestResults {
  std::vector<std::string> class_names;
  std::vector<int64_t> class_correct, class_total;
  std::vector<std::vector<int64_t>> confusion;
  std::vector<std::pair<int64_t, int64_t>> misclassified;  ///< (test index, predicted)
  std::vector<int64_t> true_labels;                        ///< of the misclassified, same order
};

/// A sweep point as the database knows it.
struct PointRow {
  std::string sweep, point_key, config_hash, config_json;
  RunStatus status = RunStatus::Pending;
  std::string host;
  int64_t pid = 0;
  int64_t run_id = 0;
};

/// What a sampled search is, as recorded when it starts (schema version 6).
struct SearchRow {
  std::string sweep, method;
  std::string metric;  ///< halving's metric; empty without halving
  int64_t eta = 0;
  std::string rung_epochs_json;  ///< "[1, 3, 9]"; empty without halving
  std::string space_json;        ///< [{"key": ..., "kind": ...}, ...]
  std::string file;
};

enum class Claim {
  Claimed,  ///< this process may run the point now
  Done,     ///< finished (or diverged: rerunning repeats it); skip
  Busy,     ///< a live process is running it; skip
};

struct MergeCounts {
  int64_t added = 0;    ///< runs copied in
  int64_t skipped = 0;  ///< runs already present (same uuid)
};

class Store {
 public:
  /// Opens (creating folders and the file when needed) and migrates. Throws
  /// StoreError with the path and the reason.
  explicit Store(const std::string& path, int busy_timeout_ms = 60000);
  /// Opens an existing database for reading only: never creates, migrates or
  /// locks it for writing (a live view beside running sweeps). StoreError for a
  /// missing file, not a runner database, or a schema other than this runner's.
  static std::unique_ptr<Store> open_read_only(const std::string& path);
  /// What the looking commands (runs, show, compare, report, plot) open: read-only,
  /// so a committed database keeps its bytes; one of an older schema is migrated
  /// in place first (saying so on stderr), as it always was, so it stays readable.
  /// StoreError for a missing file, not a runner database, or a newer schema.
  static std::unique_ptr<Store> open_to_look(const std::string& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  /// Records a new run as running; its checkpoint is `checkpoint_dir`/run-ID.pt.
  int64_t begin_run(const RunRecord& record, const std::string& checkpoint_dir);
  void record_epoch(int64_t run_id, const EpochRow& row);
  /// Marks a resumed run as running again and drops epochs after `keep_epochs`.
  void reopen_run(int64_t run_id, int64_t keep_epochs);
  /// Ends a run: status, error and, when finished, final metrics and test results.
  void end_run(int64_t run_id, RunStatus status, const std::string& error, const TestResults* results = nullptr);

  /// Atomically claims a sweep point for process `pid` unless it is done or
  /// held by a live process (`alive(host, pid)`); failed, interrupted and
  /// abandoned points are claimed again.
  Claim claim_point(const PointRow& point, const std::function<bool(const std::string&, int64_t)>& alive);
  /// Records who runs a claimed point now, or how it ended.
  void update_point(const std::string& sweep, const std::string& key, RunStatus status, int64_t pid, int64_t run_id);
  /// Records a point a search will never train (over budget, invalid) and why;
  /// a point already claimed or done keeps its status.
  void reject_point(const PointRow& point, const std::string& reason);
  std::vector<PointRow> sweep_points(const std::string& sweep) const;
  /// Records (or updates) what a search is; compare and the report read it back.
  void record_search(const SearchRow& search);
  std::optional<SearchRow> search(const std::string& sweep) const;
  /// The newest run of a sweep with this config hash: (id, status), or (0, Pending).
  std::pair<int64_t, RunStatus> latest_run(const std::string& sweep, const std::string& config_hash) const;
  /// Copies in the runs of another database that this one lacks (by run uuid),
  /// with their epochs and test results, its sweep points and searches. Idempotent.
  MergeCounts merge_from(const std::string& other_path);

  std::vector<RunRow> runs() const;
  /// Changes whenever a run starts, records an epoch or ends (what a live view
  /// polls), and how many runs are running now.
  struct Activity {
    std::string token;
    int64_t running = 0;
  };
  Activity activity() const;
  RunRow run(int64_t run_id) const;  ///< throws StoreError for an unknown id
  std::vector<EpochRow> epochs(int64_t run_id) const;
  /// Per-class results, confusion matrix and misclassified samples (empty unless finished).
  TestResults test_results(int64_t run_id) const;
  const std::string& path() const { return path_; }

  /// Time this connection spent waiting for other writers' locks, and how
  /// often it had to wait (the soak test reports these).
  struct LockWaits {
    double seconds = 0;
    int64_t waits = 0;
  };
  LockWaits lock_waits() const { return lock_waits_; }

 private:
  struct ReadOnly {};
  Store(const std::string& path, ReadOnly);
  void migrate();
  static int on_busy(void* self, int attempt);
  std::string path_;
  int busy_timeout_ms_;
  LockWaits lock_waits_;
  std::unique_ptr<SQLite::Database> db_;
};

/// ISO-8601 UTC timestamp for now.
std::string utc_now();

}  // namespace runner
