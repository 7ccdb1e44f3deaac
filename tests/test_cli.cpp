// The CLI: subcommands, --help, --version and the exit code of each error kind.
#include <doctest/doctest.h>

#include "test_util.h"

using test_util::run_runner;

TEST_CASE("--version prints the version and the LibTorch version") {
  const auto run = run_runner("--version");
  CHECK(run.exit_code == 0);
  CHECK(run.output.find("runner 0.") != std::string::npos);
  CHECK(run.output.find("LibTorch 1.") != std::string::npos);
}

TEST_CASE("--help documents the exit codes, on the app and on subcommands") {
  for (const char* args : {"--help", "check --help"}) {
    const auto run = run_runner(args);
    CAPTURE(args);
    CHECK(run.exit_code == 0);
    CHECK(run.output.find("3    budget refusal") != std::string::npos);
    CHECK(run.output.find("130  interrupted") != std::string::npos);
  }
}

TEST_CASE("runner check: 0 for the seed experiments, with the table") {
  for (const char* name : {"bn", "ln", "gn"}) {
    const auto run = run_runner("check " + test_util::source_path("experiments/session8/") + name + ".yaml");
    CAPTURE(name);
    CHECK(run.exit_code == 0);
    CHECK(run.output.find("Total params: 39,056") != std::string::npos);
  }
}

TEST_CASE("exit codes: 2 config, 3 budget, 2 usage") {
  const std::string bn = test_util::source_path("experiments/session8/bn.yaml");
  auto run = run_runner("check " + test_util::source_path("tests/data/bad/unknown_key.yaml"));
  CHECK(run.exit_code == 2);
  CHECK(run.output.find("unknown_key.yaml:4:23: key 'model.layers.0.conv.kernal'") != std::string::npos);

  run = run_runner("check " + bn + " --set model.layers.4.conv.out=128");
  CHECK(run.exit_code == 3);
  CHECK(run.output.find("fewer than 50,000") != std::string::npos);

  run = run_runner("check " + bn + " --set train.epochs=21");
  CHECK(run.exit_code == 3);
  CHECK(run.output.find("budget.max_epochs is 20") != std::string::npos);

  run = run_runner("check " + bn + " --set model.norm=grop");
  CHECK(run.exit_code == 2);
  CHECK(run.output.find("--set model.norm=grop: key 'model.norm'") != std::string::npos);

  CHECK(run_runner("check /nonexistent.yaml").exit_code == 2);
  CHECK(run_runner("frobnicate").exit_code == 2);
  CHECK(run_runner("").exit_code == 2);
}

// ---- runner run / resume / runs / show / compare on real data ----

#include <SQLiteCpp/SQLiteCpp.h>

#include <regex>

namespace {

/// Small settings: the seed BN network on 1,000 real images, 2 epochs.
std::string small(const std::string& extra = "") {
  return test_util::source_path("experiments/session8/bn.yaml") + " --set data.root=" + test_util::cifar_root() +
         " --set data.limit.train=1000 --set data.limit.test=200 --set train.epochs=2 --set train.threads=1 " + extra;
}

std::vector<std::string> small_args(const std::string& db) {
  return {"run", test_util::source_path("experiments/session8/bn.yaml"), "--set", "data.root=" + test_util::cifar_root(),
          "--set", "data.limit.train=1500", "--set", "data.limit.test=200", "--set", "train.epochs=3",
          "--set", "train.threads=1", "--db", db};
}

std::vector<double> test_accs(const std::string& db, int64_t run) {
  SQLite::Database d(db);
  SQLite::Statement q(d, "SELECT test_acc FROM epochs WHERE run_id = ? ORDER BY epoch");
  q.bind(1, run);
  std::vector<double> out;
  while (q.executeStep()) out.push_back(q.getColumn(0).getDouble());
  return out;
}

std::string status_of(const std::string& db, int64_t run) {
  SQLite::Database d(db);
  SQLite::Statement q(d, "SELECT status FROM runs WHERE id = ?");
  q.bind(1, run);
  return q.executeStep() ? q.getColumn(0).getString() : "(none)";
}

}  // namespace

TEST_CASE("runner run trains on real data and the database holds what it printed") {
  test_util::TempDir tmp;
  const auto run = run_runner("run " + small() + " --db " + tmp / "r.db");
  REQUIRE(run.exit_code == 0);
  std::smatch m;
  REQUIRE(std::regex_search(run.output, m, std::regex(R"(final test acc ([0-9.]+)%, best ([0-9.]+)%)")));
  SQLite::Database db(tmp / "r.db");
  CHECK(db.execAndGet("SELECT printf('%.2f', final_test_acc) FROM runs WHERE id = 1").getString() == m[1].str());
  CHECK(db.execAndGet("SELECT printf('%.2f', best_test_acc) FROM runs WHERE id = 1").getString() == m[2].str());
  CHECK(std::stod(m[1]) > 20.0);
  CHECK(db.execAndGet("SELECT status FROM runs").getString() == "finished");
  CHECK(db.execAndGet("SELECT count(*) FROM epochs").getInt() == 2);
  CHECK(db.execAndGet("SELECT sum(total) FROM class_results").getInt() == 200);
  CHECK(db.execAndGet("SELECT json_extract(config_json, '$.train.optimizer.momentum') FROM runs").getDouble() ==
        doctest::Approx(0.9));
  for (const char* line : {"epoch 1/2  train loss", "epoch 2/2  train loss", "Total params: 39,056"})
    CHECK(run.output.find(line) != std::string::npos);

  const auto show = run_runner("show 1 --db " + tmp / "r.db");
  CHECK(show.exit_code == 0);
  CHECK(show.output.find("limit:") != std::string::npos);  // the effective config, --set included
  const auto runs = run_runner("runs --db " + tmp / "r.db");
  CHECK(runs.output.find("finished") != std::string::npos);
  const auto compare = run_runner("compare --by model.norm --db " + tmp / "r.db");
  CHECK(compare.exit_code == 0);
  CHECK(compare.output.find("batch") != std::string::npos);
  const std::string sql = "sqlite3 " + tmp / "r.db" + " 'SELECT norm, runs FROM norm_comparison'";
  FILE* p = popen(sql.c_str(), "r");
  char buf[128] = {0};
  CHECK(fgets(buf, sizeof buf, p) != nullptr);
  pclose(p);
  CHECK(std::string(buf) == "batch|1\n");
}

TEST_CASE("Ctrl-C: the run is checkpointed, recorded as interrupted, exits 130; resume ends as an unbroken run") {
  test_util::TempDir tmp;
  const std::string db = tmp / "r.db";
  REQUIRE(run_runner("run " + small("--set train.epochs=3 --set data.limit.train=1500") + " --db " + db).exit_code == 0);
  test_util::Child child(small_args(db));
  REQUIRE(child.wait_for("epoch 1/3"));
  child.signal(SIGINT);
  CHECK(child.wait() == 130);
  CHECK(child.output().find("continue with: runner resume 2") != std::string::npos);
  CHECK(status_of(db, 2) == "interrupted");
  const auto resumed = run_runner("resume 2 --db " + db);
  CHECK(resumed.exit_code == 0);
  CHECK(status_of(db, 2) == "finished");
  CHECK(test_accs(db, 2) == test_accs(db, 1));
  CHECK(run_runner("resume 2 --db " + db).exit_code == 2);  // already finished
}

TEST_CASE("SIGKILL leaves a consistent database and a visibly unfinished run that resume completes") {
  test_util::TempDir tmp;
  const std::string db = tmp / "r.db";
  {
    test_util::Child child(small_args(db));
    REQUIRE(child.wait_for("epoch 1/3"));
    child.signal(SIGKILL);
    CHECK(child.wait() == 128 + SIGKILL);
  }
  {
    SQLite::Database d(db);
    CHECK(d.execAndGet("PRAGMA integrity_check").getString() == "ok");
  }
  CHECK(status_of(db, 1) == "running");
  CHECK(run_runner("runs --db " + db).output.find("running? (process gone)") != std::string::npos);
  CHECK(run_runner("resume 1 --db " + db).exit_code == 0);
  CHECK(status_of(db, 1) == "finished");
  REQUIRE(run_runner("run " + small("--set train.epochs=3 --set data.limit.train=1500") + " --db " + db).exit_code == 0);
  CHECK(test_accs(db, 1) == test_accs(db, 2));
}

TEST_CASE("two processes write runs to one database at once") {
  test_util::TempDir tmp;
  const std::string db = tmp / "r.db";
  test_util::Child a(small_args(db)), b(small_args(db));
  const int a_exit = a.wait(), b_exit = b.wait();
  CAPTURE(a.output());
  CAPTURE(b.output());
  CHECK(a_exit == 0);
  CHECK(b_exit == 0);
  SQLite::Database d(db);
  CHECK(d.execAndGet("SELECT count(*) FROM runs WHERE status = 'finished'").getInt() == 2);
  CHECK(d.execAndGet("SELECT count(*) FROM epochs").getInt() == 6);
  CHECK(d.execAndGet("PRAGMA integrity_check").getString() == "ok");
}

TEST_CASE("exit codes of training: 6 diverged, 4 data, 5 store, 3 budget before anything is recorded") {
  test_util::TempDir tmp;
  const std::string db = tmp / "r.db";
  auto run = run_runner("run " + small("--set train.schedule.type=constant --set train.optimizer.lr=1e12") + " --db " + db);
  CHECK(run.exit_code == 6);
  CHECK(run.output.find("diverged: loss became") != std::string::npos);
  CHECK(status_of(db, 1) == "diverged");

  run = run_runner("run " + small("--set data.root=" + tmp / "no-cifar") + " --db " + db);
  CHECK(run.exit_code == 4);
  CHECK(run.output.find("CIFAR-10 not found: looked in") != std::string::npos);

  run = run_runner("run " + small("--set model.layers.4.conv.out=128") + " --db " + db);
  CHECK(run.exit_code == 3);

  SQLite::Database d(db);
  CHECK(d.execAndGet("SELECT count(*) FROM runs").getInt() == 1);  // only the diverged one

  std::ofstream(tmp / "file") << "x";
  run = run_runner("run " + small() + " --db " + tmp / "file/r.db");
  CHECK(run.exit_code == 5);
  CHECK(run.output.find("results store error: " + tmp / "file/r.db") != std::string::npos);
  CHECK(run_runner("show 42 --db " + db).exit_code == 5);
  CHECK(run_runner("compare --db " + tmp / "none.db").exit_code == 5);
}
