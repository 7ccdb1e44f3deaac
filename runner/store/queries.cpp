// Reading runs back: every run, one run, its epochs and its test results.
#include <SQLiteCpp/SQLiteCpp.h>

#include "runner/store/sqlite_util.h"
#include "runner/store/store.h"

namespace runner {

const char* const kRunColumns =
    "r.id, r.name, r.experiment_file, r.config_yaml, r.config_json, r.config_hash, r.git_commit, r.git_dirty, "
    "r.host, r.pid, r.torch_version, r.device, r.threads, r.params, r.seed, r.epochs_planned, r.epochs_done, "
    "r.target_test_acc, r.sweep, r.checkpoint, r.started_at, r.finished_at, r.status, r.error, r.final_test_acc, "
    "r.best_test_acc, r.final_train_acc, r.final_test_loss, r.target_met, "
    "coalesce((SELECT avg(e.seconds) FROM epochs e WHERE e.run_id = r.id), 0), r.final_val_acc";

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
  r.status = stored_status(q.getColumn(i++).getString());
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

std::vector<RunRow> Store::runs() const {
  return guarded(path_, "cannot read runs", [&] {
    std::vector<RunRow> rows;
    SQLite::Statement q(*db_, std::string("SELECT ") + kRunColumns + " FROM runs r ORDER BY r.id");
    while (q.executeStep()) rows.push_back(read_run(q));
    return rows;
  });
}

Store::Activity Store::activity() const {
  return guarded(path_, "cannot read runs", [&] {
    SQLite::Statement q(
        *db_,
        "SELECT count(*) || ':' || coalesce(max(id), 0) || ':' || coalesce(sum(epochs_done), 0) || ':' || "
        "coalesce(sum(id * CASE status WHEN 'running' THEN 1 WHEN 'finished' THEN 2 WHEN 'failed' THEN 3 "
        "WHEN 'diverged' THEN 4 ELSE 5 END), 0), coalesce(sum(status = 'running'), 0) FROM runs");
    q.executeStep();
    return Activity{q.getColumn(0).getString(), q.getColumn(1).getInt64()};
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
    SQLite::Statement c(*db_,
                        "SELECT class_name, correct, total FROM class_results WHERE run_id = ? ORDER BY class_index");
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
