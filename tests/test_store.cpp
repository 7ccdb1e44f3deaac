// Stage 4: the SQLite results store and the comparison built on it.
#include <doctest/doctest.h>

#include <SQLiteCpp/SQLiteCpp.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "runner/base/errors.h"
#include "runner/config/config.h"
#include "runner/config/spec_json.h"
#include "runner/report/compare.h"
#include "runner/store/store.h"
#include "test_util.h"

using namespace runner;

namespace {

RunRecord record(const std::string& norm, int64_t seed) {
  RunRecord r;
  r.name = "t-" + norm;
  r.config_yaml = "name: t\n";
  r.config_json = R"({"model": {"norm": ")" + norm + R"("}, "train": {"seed": )" + std::to_string(seed) + "}}";
  r.config_hash = "abc";
  r.params = 39056;
  r.seed = seed;
  r.epochs = 2;
  r.target_test_acc = 50;
  return r;
}

std::string store_error(const std::function<void()>& f) { return test_util::error_of<StoreError>(f); }

}  // namespace

TEST_CASE("a new database gets the current schema version with its tables and views") {
  test_util::TempDir tmp;
  { Store store(tmp / "sub/dir/results.db"); }
  SQLite::Database db(tmp / "sub/dir/results.db");
  CHECK(db.execAndGet("PRAGMA user_version").getInt() == kSchemaVersion);
  CHECK(db.execAndGet("PRAGMA journal_mode").getString() == "wal");
  for (const char* name :
       {"runs", "epochs", "class_results", "confusion", "misclassified", "run_summary", "norm_comparison"})
    CHECK(db.execAndGet(std::string("SELECT count(*) FROM sqlite_master WHERE name = '") + name + "'").getInt() == 1);
  { Store again(tmp / "sub/dir/results.db"); }  // reopening migrates nothing and keeps the version
  CHECK(db.execAndGet("PRAGMA user_version").getInt() == kSchemaVersion);
}

TEST_CASE("a run is 'running' until it ends, then holds its final metrics and test results") {
  test_util::TempDir tmp;
  Store store(tmp / "r.db");
  const int64_t id = store.begin_run(record("batch", 1), tmp / "ckpt");
  CHECK(store.run(id).status == RunStatus::Running);
  const std::string checkpoint = store.run(id).checkpoint;
  CHECK(checkpoint.rfind(tmp / "ckpt" + "/run-" + std::to_string(id) + "-", 0) == 0);
  CHECK(checkpoint.size() == (tmp / "ckpt/run-1-12345678.pt").size());
  {  // another database in the same folder: run 1 there has its own checkpoint file
    Store other(tmp / "other.db");
    CHECK(other.run(other.begin_run(record("batch", 1), tmp / "ckpt")).checkpoint != checkpoint);
  }
  CHECK_FALSE(store.run(id).final_test_acc.has_value());
  store.record_epoch(id, {1, 1.5, 40, 1.4, 45, 0.1, 2.0, {}, {}});
  store.record_epoch(id, {2, 1.2, 55, 1.1, 52, 0.01, 3.0, {}, {}});
  CHECK(store.run(id).epochs_done == 2);
  TestResults results;
  results.class_names = {"a", "b"};
  results.class_correct = {3, 1};
  results.class_total = {4, 2};
  results.confusion = {{3, 1}, {1, 1}};
  results.misclassified = {{0, 1}, {5, 0}};
  results.true_labels = {0, 1};
  store.end_run(id, RunStatus::Finished, "", &results);
  const RunRow row = store.run(id);
  CHECK(row.status == RunStatus::Finished);
  CHECK(*row.final_test_acc == doctest::Approx(52));
  CHECK(*row.best_test_acc == doctest::Approx(52));
  CHECK(*row.final_train_acc == doctest::Approx(55));
  CHECK(*row.target_met);
  CHECK(row.seconds_per_epoch == doctest::Approx(2.5));
  CHECK(!row.finished_at.empty());
  SQLite::Database db(tmp / "r.db");
  CHECK(db.execAndGet("SELECT sum(count) FROM confusion").getInt() == 6);
  CHECK(db.execAndGet("SELECT count(*) FROM misclassified").getInt() == 2);
  CHECK(db.execAndGet("SELECT accuracy FROM class_results WHERE class_index = 0").getDouble() == doctest::Approx(75));
  CHECK(db.execAndGet("SELECT norm || ':' || runs FROM norm_comparison").getString() == "batch:1");

  const int64_t failed = store.begin_run(record("layer", 1), tmp / "ckpt");
  store.record_epoch(failed, {1, 2.0, 10, 2.0, 10, 0.1, 1.0, {}, {}});
  store.end_run(failed, RunStatus::Diverged, "loss became nan at epoch 2, step 3");
  CHECK(store.run(failed).status == RunStatus::Diverged);
  CHECK_FALSE(store.run(failed).target_met.has_value());  // only finished runs meet or miss a target
  CHECK(store.epochs(failed).size() == 1);
}

TEST_CASE("every run status has one spelling, which the database's CHECK accepts and reads back") {
  for (RunStatus status : {RunStatus::Pending, RunStatus::Running, RunStatus::Finished, RunStatus::Diverged,
                           RunStatus::Failed, RunStatus::Interrupted, RunStatus::Rejected}) {
    INFO(status_text(status));
    CHECK(parse_status(status_text(status)) == status);
  }
  CHECK_FALSE(parse_status("done").has_value());
  CHECK_FALSE(parse_status("Finished").has_value());
  test_util::TempDir tmp;
  Store store(tmp / "r.db");
  for (RunStatus status :
       {RunStatus::Running, RunStatus::Finished, RunStatus::Diverged, RunStatus::Failed, RunStatus::Interrupted}) {
    const int64_t id = store.begin_run(record("batch", 1), tmp / "ckpt");
    store.end_run(id, status, "");
    CHECK(store.run(id).status == status);
  }
  PointRow point{"s", "seed=1", "h", "{}", RunStatus::Running, "host", 1, 0};
  store.reject_point(point, "over budget");
  CHECK(store.sweep_points("s").at(0).status == RunStatus::Rejected);
}

TEST_CASE("reopening a resumed run drops the epochs after its checkpoint") {
  test_util::TempDir tmp;
  Store store(tmp / "r.db");
  const int64_t id = store.begin_run(record("batch", 1), tmp / "ckpt");
  for (int64_t e = 1; e <= 3; ++e) store.record_epoch(id, {e, 1, 1, 1, 1, 1, 1, {}, {}});
  store.end_run(id, RunStatus::Interrupted, "stopped");
  store.reopen_run(id, 2);
  CHECK(store.run(id).status == RunStatus::Running);
  CHECK(store.run(id).error.empty());
  CHECK(store.epochs(id).size() == 2);
}

TEST_CASE("an unusable, foreign, newer or locked database is a clear StoreError") {
  test_util::TempDir tmp;
  std::ofstream(tmp / "file") << "x";
  CHECK(store_error([&] { Store s(tmp / "file/results.db"); }).find(tmp / "file/results.db") == 0);
  CHECK(store_error([&] { Store s("/proc/runner-results/results.db"); }).find("cannot create the folder") !=
        std::string::npos);
  std::filesystem::create_directories(tmp / "a-directory.db");
  CHECK(store_error([&] { Store s(tmp / "a-directory.db"); }).find("cannot open the results database") !=
        std::string::npos);
  {
    SQLite::Database other(tmp / "other.db", SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    other.exec("CREATE TABLE notes (x)");
  }
  CHECK(store_error([&] { Store s(tmp / "other.db"); }).find("not a runner results database") != std::string::npos);
  {
    SQLite::Database newer(tmp / "newer.db", SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    newer.exec("PRAGMA user_version = 99");
  }
  CHECK(store_error([&] { Store s(tmp / "newer.db"); }).find("schema version 99 is newer") != std::string::npos);

  Store store(tmp / "locked.db");
  SQLite::Database holder(tmp / "locked.db", SQLite::OPEN_READWRITE);
  holder.exec("BEGIN EXCLUSIVE");
  const std::string locked = store_error([&] {
    Store quick(tmp / "locked.db", /*busy_timeout_ms=*/200);
    quick.begin_run(record("batch", 1), tmp / "ckpt");
  });
  CHECK(locked.find(tmp / "locked.db") == 0);
  CHECK(locked.find("locked") != std::string::npos);
  holder.exec("ROLLBACK");
}

TEST_CASE("compare groups finished runs by a config key with mean ± std over seeds") {
  std::vector<RunRow> runs;
  auto add = [&](const std::string& norm, int64_t seed, double final_acc, RunStatus status = RunStatus::Finished) {
    RunRow r;
    r.record = record(norm, seed);
    r.status = status;
    r.final_test_acc = final_acc;
    r.best_test_acc = final_acc + 1;
    r.final_train_acc = final_acc + 5;
    r.target_met = final_acc >= 50;
    r.epochs_done = 2;
    r.seconds_per_epoch = 10;
    runs.push_back(r);
  };
  add("batch", 1, 70), add("batch", 2, 72), add("batch", 3, 74);
  add("group", 1, 60);
  add("layer", 1, 99, RunStatus::Interrupted);
  CompareOptions options;
  const std::string table = compare_runs(runs, options);
  CHECK(table.find("batch") != std::string::npos);
  CHECK(table.find("72.00 ± 2.00") != std::string::npos);
  CHECK(table.find("3/3") != std::string::npos);
  CHECK(table.find("layer") == std::string::npos);  // not finished: not compared

  options.format = "csv";
  CHECK(compare_runs(runs, options).find(R"("group","1","39056","2","60.00")") != std::string::npos);
  options.format = "json";
  CHECK(compare_runs(runs, options).find(R"("final_test_acc_std": 2.0)") != std::string::npos);
  options.format = "markdown";
  CHECK(compare_runs(runs, options).rfind("| model.norm", 0) == 0);
  options.format = "table";
  options.where = {"model.norm=group"};
  CHECK(compare_runs(runs, options).find("batch") == std::string::npos);
  options.where = {"nonsense"};
  CHECK_THROWS_AS(compare_runs(runs, options), ConfigError);
}

namespace {

/// A finished run of a real experiment file with --set values, as `runner run` records it.
RunRow finished_run(int64_t id, const std::string& file, std::vector<std::string> sets, double acc,
                    const std::string& sweep = "") {
  const ExperimentSpec spec = load_experiment(test_util::source_path(file), sets);
  RunRow r;
  r.id = id;
  r.record.name = spec.name;
  r.record.experiment_file = test_util::source_path(file);
  r.record.config_yaml = spec.yaml;
  r.record.config_json = experiment_json(spec).dump();
  r.record.params = 1000 + static_cast<int64_t>(spec.model.layers.size());  // tells networks apart in the table
  r.record.seed = spec.train.seed;
  r.record.sweep = sweep;
  r.status = RunStatus::Finished;
  r.final_test_acc = acc, r.best_test_acc = acc, r.final_train_acc = acc;
  r.epochs_done = 20;
  return r;
}

}  // namespace

TEST_CASE("compare never averages different experiments: each row is one config, the keys that differ are columns") {
  std::vector<RunRow> runs;
  // The seed network with each norm, two seeds each, on another data copy and thread count.
  int64_t id = 0;
  for (const char* norm : {"bn", "ln", "gn"})
    for (int seed : {1, 2})
      runs.push_back(finished_run(++id, std::string("experiments/session8/") + norm + ".yaml",
                                  {"train.seed=" + std::to_string(seed), "train.threads=" + std::to_string(seed),
                                   "data.root=/copy" + std::to_string(seed), "name=s8-" + std::to_string(seed)},
                                  70 + seed, "norms"));
  CompareOptions options;
  options.format = "json";
  SUBCASE("only the norm, the seed and where it ran differ: one row per norm, no extra column") {
    const nlohmann::json json = nlohmann::json::parse(compare_runs(runs, options));
    REQUIRE(json.size() == 3);
    for (const auto& row : json) {
      CHECK(row["runs"] == 2);
      CHECK(row["differs"].empty());  // the layers' norm types follow model.norm: not another experiment
    }
  }
  SUBCASE("one key differs too: it becomes a column and splits the rows") {
    runs.push_back(finished_run(++id, "experiments/session8/bn.yaml", {"train.optimizer.lr=0.01"}, 50));
    const nlohmann::json json = nlohmann::json::parse(compare_runs(runs, options));
    REQUIRE(json.size() == 4);
    CHECK(json[0]["model.norm"] == "batch");
    CHECK(json[0]["differs"]["train.optimizer.lr"] == "0.01");
    CHECK(json[0]["runs"] == 1);
    CHECK(json[1]["differs"]["train.optimizer.lr"] == "0.05");
    CHECK(json[1]["runs"] == 2);
    CHECK(json[1]["final_test_acc_mean"].get<double>() == doctest::Approx(71.5));
    options.format = "table";
    const std::string table = compare_runs(runs, options);
    CAPTURE(table);
    CHECK(table.rfind("model.norm  train.optimizer.lr  runs", 0) == 0);
  }
  SUBCASE("another network: an experiment column named by sweep, and a note saying which keys differ") {
    for (int seed : {1, 2, 3})
      runs.push_back(
          finished_run(++id, "experiments/best/bn.yaml", {"train.seed=" + std::to_string(seed)}, 82, "best-seeds"));
    options.format = "table";
    const std::string table = compare_runs(runs, options);
    CAPTURE(table);
    CHECK(table.rfind("model.norm  experiment  runs", 0) == 0);
    CHECK(table.find("\nbatch       best-seeds     3") != std::string::npos);
    CHECK(table.find("\nbatch            norms     2") != std::string::npos);
    CHECK(table.find("experiment: these runs differ in ") != std::string::npos);
    CHECK(table.find("config keys besides model.norm and the seed") != std::string::npos);
    options.format = "json";
    const nlohmann::json json = nlohmann::json::parse(compare_runs(runs, options));
    CHECK(json.size() == 4);
    CHECK(json[0]["differs"]["experiment"] == "best-seeds");
    // Two experiments of one sweep are told apart by their first run.
    for (auto& r : runs) r.record.sweep = "all";
    const nlohmann::json same_sweep = nlohmann::json::parse(compare_runs(runs, options));
    CHECK(same_sweep[0]["differs"]["experiment"] == "run 1");  // the seed network's BN runs
    CHECK(same_sweep[1]["differs"]["experiment"] == "run 7");
  }
}

TEST_CASE("Welch's t-test p-values match reference values") {
  CHECK(welch_p_value({1, 2, 3, 4, 5}, {6, 7, 8, 9, 10}) == doctest::Approx(0.0010528).epsilon(1e-4));  // t 5, df 8
  CHECK(welch_p_value({70, 72, 74}, {60, 61, 65}) == doctest::Approx(0.0078004).epsilon(1e-4));  // t 5.22, df 3.72
  CHECK(welch_p_value({1, 2, 3}, {1, 2, 3}) == doctest::Approx(1.0));
  CHECK(std::isnan(welch_p_value({1}, {2, 3})));
  CHECK(std::isnan(welch_p_value({2, 2}, {3, 3})));  // no spread: no test
}

TEST_CASE(
    "compare --by and --where a block's parameter: its value as written, one row per value, no experiment column") {
  // experiments/ablation/techniques.yaml chooses its first layer by a block parameter, which the
  // recorded (expanded) config does not have: the two stems are two networks, told apart by that key.
  std::vector<RunRow> runs;
  int64_t id = 0;
  for (const char* stem : {"conv_stem", "whiten_stem"})
    for (int seed : {1, 2}) {
      ++id;
      runs.push_back(
          finished_run(id, "experiments/ablation/techniques.yaml",
                       {"model.blocks.net.params.stem=" + std::string(stem), "train.seed=" + std::to_string(seed)},
                       80.0 + static_cast<double>(id), "ablation"));
    }
  CompareOptions options;
  options.format = "json";
  options.by = "model.blocks.net.params.stem";
  const nlohmann::json json = nlohmann::json::parse(compare_runs(runs, options));
  REQUIRE(json.size() == 2);
  CHECK(json[0]["model.blocks.net.params.stem"] == "conv_stem");
  CHECK(json[0]["runs"] == 2);
  CHECK(json[0]["differs"].empty());
  CHECK(json[1]["model.blocks.net.params.stem"] == "whiten_stem");
  options.where = {"model.blocks.net.params.stem=conv_stem"};
  CHECK(nlohmann::json::parse(compare_runs(runs, options)).size() == 1);
}

TEST_CASE("compare groups by several keys and, when ranking seeds, says whether each group is behind the best") {
  std::vector<RunRow> runs;
  auto add = [&](const std::string& norm, int64_t seed, double final_acc, double lr) {
    RunRow r;
    r.record = record(norm, seed);
    nlohmann::json config = nlohmann::json::parse(r.record.config_json);
    config["train"]["optimizer"]["lr"] = lr;
    r.record.config_json = config.dump();
    r.status = RunStatus::Finished;
    r.final_test_acc = final_acc;
    r.best_test_acc = final_acc;
    r.final_train_acc = final_acc;
    r.epochs_done = 2;
    runs.push_back(r);
  };
  add("batch", 1, 70, 0.1), add("batch", 2, 72, 0.1), add("batch", 3, 74, 0.1);
  add("group", 1, 60, 0.1), add("group", 2, 61, 0.1), add("group", 3, 65, 0.1);
  add("group", 1, 71, 0.2), add("group", 2, 73, 0.2), add("group", 3, 71, 0.2);
  CompareOptions options;
  options.by = "model.norm,train.optimizer.lr";
  options.rank = "test";
  const std::string table = compare_runs(runs, options);
  CAPTURE(table);
  CHECK(table.rfind("model.norm, train.optimizer.lr", 0) == 0);
  CHECK(table.find("vs best test (Welch p)") != std::string::npos);
  const size_t first = table.find('\n') + 1;
  CHECK(table.compare(first, 10, "batch, 0.1") == 0);  // best first
  CHECK(table.find("best\n") != std::string::npos);
  CHECK(table.find("-10.00 (p 0.008)") != std::string::npos);  // group at lr 0.1: clearly behind
  CHECK(table.find("-0.33 (p 0.") != std::string::npos);       // group at lr 0.2: within the spread
  options.format = "json";
  const nlohmann::json json = nlohmann::json::parse(compare_runs(runs, options));
  CHECK(json[2]["model.norm"] == "group");
  CHECK(json[2]["welch_p"].get<double>() == doctest::Approx(0.0078004).epsilon(1e-4));
  options.format = "table";
  options.rank = "";
  CHECK(compare_runs(runs, options).find("Welch") == std::string::npos);  // nothing to compare against
  options.by = "model.norm,";
  CHECK_THROWS_AS(compare_runs(runs, options), ConfigError);

  // --sweep a,b: the runs of either sweep.
  runs[0].record.sweep = "first", runs[3].record.sweep = "second", runs[6].record.sweep = "third";
  options.by = "model.norm";
  options.format = "json";
  auto count = [&](const std::string& sweeps) {
    options.sweep = sweeps;
    int64_t n = 0;
    for (const auto& group : nlohmann::json::parse(compare_runs(runs, options))) n += group["runs"].get<int64_t>();
    return n;
  };
  CHECK(count("first") == 1);
  CHECK(count("first,second") == 2);
  CHECK(count("second,third,nothing") == 2);
  CHECK(count("") == 9);
}

TEST_CASE("a sweep point is claimed by one process at a time and never again once finished") {
  test_util::TempDir tmp;
  Store store(tmp / "r.db");
  PointRow p{"s", "model.norm=batch seed=1", "h1", "{}", RunStatus::Running, "host-a", 100, 0};
  auto alive = [](const std::string&, int64_t pid) { return pid == 100; };
  CHECK(store.claim_point(p, alive) == Claim::Claimed);
  p.pid = 200;
  CHECK(store.claim_point(p, alive) == Claim::Busy);  // pid 100 still runs it
  store.update_point("s", p.point_key, RunStatus::Interrupted, 0, 0);
  CHECK(store.claim_point(p, alive) == Claim::Claimed);  // interrupted points run again
  store.update_point("s", p.point_key, RunStatus::Running, 300, 0);
  CHECK(store.claim_point(p, alive) == Claim::Claimed);  // pid 300 is gone: abandoned
  store.update_point("s", p.point_key, RunStatus::Finished, 0, 1);
  CHECK(store.claim_point(p, alive) == Claim::Done);
  CHECK(store.sweep_points("s").size() == 1);
}

TEST_CASE("merge copies runs with their epochs and results once, however often it is repeated") {
  test_util::TempDir tmp;
  for (const char* shard : {"a.db", "b.db"}) {
    Store store(tmp / shard);
    for (int64_t seed = 1; seed <= 2; ++seed) {
      const int64_t id = store.begin_run(record(shard[0] == 'a' ? "batch" : "group", seed), tmp / "ckpt");
      store.record_epoch(id, {1, 1.0, 50, 1.0, 50, 0.1, 1.0, {}, {}});
      TestResults r;
      r.class_names = {"x"}, r.class_correct = {1}, r.class_total = {2}, r.confusion = {{1}};
      r.misclassified = {{3, 0}}, r.true_labels = {0};
      store.end_run(id, RunStatus::Finished, "", &r);
      store.claim_point({"s", std::string(shard) + std::to_string(seed), "h", "{}", RunStatus::Running, "h", 1, 0},
                        [](const std::string&, int64_t) { return false; });
      store.update_point("s", std::string(shard) + std::to_string(seed), RunStatus::Finished, 0, id);
    }
  }
  Store merged(tmp / "all.db");
  CHECK(merged.merge_from(tmp / "a.db").added == 2);
  CHECK(merged.merge_from(tmp / "b.db").added == 2);
  const MergeCounts again = merged.merge_from(tmp / "a.db");
  CHECK(again.added == 0);
  CHECK(again.skipped == 2);
  CHECK(merged.runs().size() == 4);
  SQLite::Database db(tmp / "all.db");
  CHECK(db.execAndGet("SELECT count(*) FROM epochs").getInt() == 4);
  CHECK(db.execAndGet("SELECT count(*) FROM misclassified").getInt() == 4);
  CHECK(db.execAndGet("SELECT count(DISTINCT run_id) FROM class_results").getInt() == 4);
  CHECK(db.execAndGet("SELECT count(*) FROM sweep_points WHERE status = 'finished' AND run_id IS NOT NULL").getInt() ==
        4);
  CHECK(store_error([&] { merged.merge_from(tmp / "missing.db"); }).find("no such database") != std::string::npos);
}

TEST_CASE("norm_comparison groups one experiment per row, in databases migrated from versions 1, 2 and 3") {
  for (int version : {1, 2, 3, kSchemaVersion}) {
    CAPTURE(version);
    test_util::TempDir tmp;
    const std::string path = tmp / "old.db";
    {
      SQLite::Database old(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
      for (int step = 1; step <= version; ++step) old.exec(schema_step(step));
      old.exec("PRAGMA user_version = " + std::to_string(version));
      // Two networks with BatchNorm (lr 0.1 and 0.2), two seeds each, and one GroupNorm run;
      // the seeds also differ in name, data copy and threads, which do not make another experiment.
      auto insert = [&](const std::string& norm, double lr, int seed, int64_t params, double acc) {
        const std::string json = R"({"data": {"root": "/d)" + std::to_string(seed) + R"("}, "model": {"norm": ")" +
                                 norm + R"("}, "name": "n)" + std::to_string(seed) +
                                 R"(", "train": {"optimizer": {"lr": )" + std::to_string(lr) + R"(}, "seed": )" +
                                 std::to_string(seed) + R"(, "threads": )" + std::to_string(seed) + "}}";
        SQLite::Statement q(old,
                            "INSERT INTO runs (name, config_yaml, config_json, config_hash, started_at, status, "
                            "final_test_acc, params, seed, epochs_done) VALUES ('r', 'x', ?, 'h', 'now', "
                            "'finished', ?, ?, ?, 20)");
        q.bind(1, json), q.bind(2, acc), q.bind(3, params), q.bind(4, seed);
        q.exec();
      };
      insert("batch", 0.1, 1, 39056, 70), insert("batch", 0.1, 2, 39056, 72);
      insert("batch", 0.2, 1, 45568, 80), insert("batch", 0.2, 2, 45568, 84);
      insert("group", 0.1, 1, 39056, 60);
    }
    { Store store(path); }
    SQLite::Database db(path);
    CHECK(db.execAndGet("PRAGMA user_version").getInt() == kSchemaVersion);
    SQLite::Statement q(db, "SELECT norm, first_run, runs, params, final_test_acc FROM norm_comparison");
    std::vector<std::string> rows;
    while (q.executeStep())
      rows.push_back(q.getColumn(0).getString() + " " + q.getColumn(1).getString() + " " + q.getColumn(2).getString() +
                     " " + q.getColumn(3).getString() + " " + q.getColumn(4).getString());
    CHECK(rows == std::vector<std::string>{"batch 1 2 39056 71.0", "batch 3 2 45568 82.0", "group 5 1 39056 60.0"});
  }
}

TEST_CASE("a version 1 database is migrated to the current version in place, keeping its runs") {
  test_util::TempDir tmp;
  {  // a real version 1 database with one finished run
    SQLite::Database v1(tmp / "v1.db", SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    v1.exec(schema_step(1));
    v1.exec(
        "INSERT INTO runs (name, config_yaml, config_json, config_hash, started_at, status, final_test_acc) "
        "VALUES ('old', 'x', '{\"model\": {\"norm\": \"batch\"}}', 'h', 'now', 'finished', 71.5);"
        "INSERT INTO epochs VALUES (1, 1, 1.0, 50, 1.1, 71.5, 0.1, 2.0);"
        "PRAGMA user_version = 1");
  }
  Store store(tmp / "v1.db");
  SQLite::Database db(tmp / "v1.db");
  CHECK(db.execAndGet("PRAGMA user_version").getInt() == kSchemaVersion);
  CHECK(db.execAndGet("SELECT length(uuid) FROM runs").getInt() == 32);
  CHECK(db.execAndGet("SELECT count(*) FROM sqlite_master WHERE name = 'sweep_points'").getInt() == 1);
  // version 3: validation columns, NULL for the old run; its data and the views intact
  CHECK(db.execAndGet("SELECT count(*) FROM epochs WHERE val_acc IS NULL AND test_acc = 71.5").getInt() == 1);
  CHECK(db.execAndGet("SELECT final_test_acc FROM norm_comparison WHERE norm = 'batch'").getDouble() == 71.5);
  CHECK(db.execAndGet("SELECT final_val_acc IS NULL FROM run_summary").getInt() == 1);
  CHECK(store.epochs(1).size() == 1);
  CHECK(!store.epochs(1)[0].val_acc);
}

TEST_CASE("open_to_look reads a current database without changing a byte, and migrates an older one") {
  test_util::TempDir tmp;
  const std::string current = tmp / "current.db", copy = tmp / "copy.db";
  { Store store(current); }
  SQLite::Database(current).exec("VACUUM INTO '" + copy + "'");  // as committed: rollback journal
  const std::string before = test_util::read_file(copy);
  {
    const auto looked = Store::open_to_look(copy);
    CHECK(looked->runs().empty());
  }
  CHECK(test_util::read_file(copy) == before);
  CHECK_FALSE(std::filesystem::exists(copy + "-wal"));

  {  // version 1: migrated, as the writing open would, so the looking commands can read it
    SQLite::Database v1(tmp / "v1.db", SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    v1.exec(schema_step(1));
    v1.exec("PRAGMA user_version = 1");
  }
  { const auto looked = Store::open_to_look(tmp / "v1.db"); }
  CHECK(SQLite::Database(tmp / "v1.db").execAndGet("PRAGMA user_version").getInt() == kSchemaVersion);

  CHECK(store_error([&] { Store::open_to_look(tmp / "none.db"); }).find("no results database here yet") !=
        std::string::npos);
  CHECK_FALSE(std::filesystem::exists(tmp / "none.db"));
}
