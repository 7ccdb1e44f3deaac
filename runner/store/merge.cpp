// runner merge: copies in the runs another database has and this one lacks.
#include <SQLiteCpp/SQLiteCpp.h>

#include "runner/store/sqlite_util.h"
#include "runner/store/store.h"

namespace runner {

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
      while (missing.executeStep())
        to_copy.emplace_back(missing.getColumn(0).getInt64(), missing.getColumn(1).getString());
      counts.skipped =
          db_->execAndGet("SELECT count(*) FROM src.runs").getInt64() - static_cast<int64_t>(to_copy.size());
      for (const auto& [old_id, uuid] : to_copy) {
        SQLite::Statement copy(
            *db_, "INSERT INTO main.runs (" + columns + ") SELECT " + columns + " FROM src.runs WHERE id = ?");
        copy.bind(1, old_id);
        copy.exec();
        const int64_t new_id = db_->getLastInsertRowid();
        for (const char* table : {"epochs", "class_results", "confusion", "misclassified"}) {
          // Every child table has run_id first; copy the other columns as they are.
          SQLite::Statement cols(*db_, std::string("SELECT group_concat(name, ', ') FROM pragma_table_info('") + table +
                                           "') WHERE name != 'run_id'");
          cols.executeStep();
          const std::string rest = cols.getColumn(0).getString();
          SQLite::Statement child(*db_, std::string("INSERT INTO main.") + table + " (run_id, " + rest +
                                            ") SELECT ?, " + rest + " FROM src." + table + " WHERE run_id = ?");
          child.bind(1, new_id), child.bind(2, old_id);
          child.exec();
        }
        ++counts.added;
      }
      db_->exec(
          "INSERT INTO main.sweep_points (sweep, point_key, config_hash, config_json, status, host, pid, run_id, "
          "updated_at, reason) SELECT p.sweep, p.point_key, p.config_hash, p.config_json, p.status, p.host, p.pid, "
          "(SELECT m.id FROM main.runs m JOIN src.runs r ON r.uuid = m.uuid WHERE r.id = p.run_id), p.updated_at, "
          "p.reason "
          "FROM src.sweep_points p WHERE 1 "
          "ON CONFLICT(sweep, point_key) DO UPDATE SET status = excluded.status, run_id = excluded.run_id, "
          "host = excluded.host, pid = excluded.pid, updated_at = excluded.updated_at "
          "WHERE main.sweep_points.status != 'finished'");
      db_->exec("INSERT OR IGNORE INTO main.searches SELECT * FROM src.searches");
      tx.commit();
    } catch (...) {
      db_->exec("DETACH DATABASE src");
      throw;
    }
    db_->exec("DETACH DATABASE src");
    return counts;
  });
}

}  // namespace runner
