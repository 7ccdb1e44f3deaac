// Sweep points: claimed by one process at a time, never again once finished.
#include <SQLiteCpp/SQLiteCpp.h>

#include "runner/store/sqlite_util.h"
#include "runner/store/store.h"

namespace runner {

Claim Store::claim_point(const PointRow& p, const std::function<bool(const std::string&, int64_t)>& alive) {
  return guarded(path_, "cannot claim sweep point " + p.point_key, [&] {
    SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
    SQLite::Statement q(*db_, "SELECT status, host, pid FROM sweep_points WHERE sweep = ? AND point_key = ?");
    q.bind(1, p.sweep), q.bind(2, p.point_key);
    if (q.executeStep()) {
      const RunStatus status = stored_status(q.getColumn(0).getString());
      if (has_result(status)) return Claim::Done;
      if (status == RunStatus::Running && alive(q.getColumn(1).getString(), q.getColumn(2).getInt64()))
        return Claim::Busy;
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

void Store::update_point(const std::string& sweep, const std::string& key, RunStatus status, int64_t pid,
                         int64_t run_id) {
  guarded(path_, "cannot update sweep point " + key, [&] {
    SQLite::Statement u(*db_,
                        "UPDATE sweep_points SET status = ?, pid = ?, run_id = nullif(?, 0), updated_at = ? "
                        "WHERE sweep = ? AND point_key = ?");
    u.bind(1, status_text(status)), u.bind(2, pid), u.bind(3, run_id), u.bind(4, utc_now()), u.bind(5, sweep),
        u.bind(6, key);
    u.exec();
    return 0;
  });
}

void Store::reject_point(const PointRow& p, const std::string& reason) {
  guarded(path_, "cannot record rejected sweep point " + p.point_key, [&] {
    SQLite::Statement u(*db_,
                        "INSERT INTO sweep_points (sweep, point_key, config_hash, config_json, status, updated_at, "
                        "reason) VALUES (?, ?, ?, ?, 'rejected', ?, ?) ON CONFLICT(sweep, point_key) DO NOTHING");
    u.bind(1, p.sweep), u.bind(2, p.point_key), u.bind(3, p.config_hash), u.bind(4, p.config_json);
    u.bind(5, utc_now()), u.bind(6, reason);
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
      r.status = stored_status(q.getColumn(4).getString()), r.host = q.getColumn(5).getString();
      r.pid = q.getColumn(6).getInt64(), r.run_id = q.getColumn(7).getInt64();
      rows.push_back(r);
    }
    return rows;
  });
}

std::pair<int64_t, RunStatus> Store::latest_run(const std::string& sweep, const std::string& config_hash) const {
  return guarded(path_, "cannot read runs", [&] {
    SQLite::Statement q(*db_,
                        "SELECT id, status FROM runs WHERE sweep = ? AND config_hash = ? ORDER BY id DESC LIMIT 1");
    q.bind(1, sweep), q.bind(2, config_hash);
    if (!q.executeStep()) return std::pair<int64_t, RunStatus>{0, RunStatus::Pending};
    return std::pair<int64_t, RunStatus>{q.getColumn(0).getInt64(), stored_status(q.getColumn(1).getString())};
  });
}

void Store::record_search(const SearchRow& r) {
  guarded(path_, "cannot record search " + r.sweep, [&] {
    SQLite::Statement u(*db_,
                        "INSERT INTO searches (sweep, method, metric, eta, rung_epochs, space, file, updated_at) "
                        "VALUES (?1, ?2, nullif(?3, ''), nullif(?4, 0), nullif(?5, ''), ?6, ?7, ?8) "
                        "ON CONFLICT(sweep) DO UPDATE SET method = ?2, metric = nullif(?3, ''), eta = nullif(?4, 0), "
                        "rung_epochs = nullif(?5, ''), space = ?6, file = ?7, updated_at = ?8");
    u.bind(1, r.sweep), u.bind(2, r.method), u.bind(3, r.metric), u.bind(4, r.eta), u.bind(5, r.rung_epochs_json);
    u.bind(6, r.space_json), u.bind(7, r.file), u.bind(8, utc_now());
    u.exec();
    return 0;
  });
}

std::optional<SearchRow> Store::search(const std::string& sweep) const {
  return guarded(path_, "cannot read search " + sweep, [&]() -> std::optional<SearchRow> {
    SQLite::Statement q(*db_,
                        "SELECT sweep, method, coalesce(metric, ''), coalesce(eta, 0), coalesce(rung_epochs, ''), "
                        "space, coalesce(file, '') FROM searches WHERE sweep = ?");
    q.bind(1, sweep);
    if (!q.executeStep()) return std::nullopt;
    return SearchRow{q.getColumn(0).getString(), q.getColumn(1).getString(), q.getColumn(2).getString(),
                     q.getColumn(3).getInt64(),  q.getColumn(4).getString(), q.getColumn(5).getString(),
                     q.getColumn(6).getString()};
  });
}

}  // namespace runner
