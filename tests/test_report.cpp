// Pictures: the HTML report and runner plot, checked as files and in a real
// headless Chromium (installed from Debian when missing).
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include <SQLiteCpp/SQLiteCpp.h>

#include "image_io.h"
#include "runner/report/search_view.h"
#include "runner/store/store.h"
#include "runner_version.h"  // RUNNER_PNG
#include "test_util.h"

using namespace runner;
namespace fs = std::filesystem;
using test_util::run_runner;

namespace {

/// A database with finished BN/LN/GN runs (real test images for their
/// misclassified samples) and one run still running.
void fill_db(const std::string& path, int finished_runs) {
  Store store(path);
  const std::string yaml = test_util::read_file(test_util::source_path("experiments/session8/bn.yaml"));
  const char* norms[] = {"batch", "layer", "group"};
  for (int i = 0; i < finished_runs + 1; ++i) {
    const std::string norm = norms[i % 3];
    RunRecord r;
    r.name = "report-" + norm;
    r.config_yaml = yaml;
    r.config_json = R"({"model": {"norm": ")" + norm + R"("}, "data": {"root": ")" + test_util::cifar_root() + R"("}})";
    r.config_hash = "h" + std::to_string(i);
    r.params = 39056;
    r.seed = 1 + i / 3;
    r.epochs = 20;
    r.target_test_acc = 70;
    const int64_t id = store.begin_run(r, "/tmp");
    for (int64_t e = 1; e <= 20; ++e) {
      const double t = static_cast<double>(e) / 20.0;
      store.record_epoch(id,
                         {e, 1.6 - t + 0.01 * i, 40 + 45 * t, 1.5 - 0.7 * t, 45 + 30 * t - 0.1 * i, 0.1, 20, {}, {}});
    }
    if (i == finished_runs) break;  // the last one stays running
    TestResults res;
    for (int k = 0; k < 10; ++k) {
      res.class_names.push_back("class" + std::to_string(k));
      res.class_correct.push_back(700 + k);
      res.class_total.push_back(1000);
      res.confusion.push_back(std::vector<int64_t>(10, 30));
      res.confusion.back()[static_cast<size_t>(k)] = 700 + k;
    }
    for (int64_t m = 0; m < 40; ++m)
      res.misclassified.emplace_back(m * 7, (m + 1) % 10), res.true_labels.push_back(m % 10);
    store.end_run(id, RunStatus::Finished, "", &res);
  }
}

}  // namespace

TEST_CASE("runner report writes one self-contained HTML file with the database's values") {
  test_util::TempDir tmp;
  fill_db(tmp / "r.db", 3);
  const auto run = run_runner("report --db " + tmp / "r.db" + " --out " + tmp / "out/report.html");
  REQUIRE(run.exit_code == 0);
  const std::string html = test_util::read_file(tmp / "out/report.html");
  CHECK(html.find("<table id=\"comparison\">") != std::string::npos);
  CHECK(html.find("<div class=\"charts\"><svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\"") !=
        std::string::npos);
  CHECK(html.find("<polyline") != std::string::npos);
  CHECK(html.find("class=\"confusion\"") != std::string::npos);
  CHECK(html.find("class=\"misclassified\"") != std::string::npos);
  CHECK(html.find("data:image/png;base64,iVBORw0KGgo") != std::string::npos);  // PNG tiles inline
  CHECK(html.find("Total params: 39,056") != std::string::npos);               // each run's summary
  CHECK(html.find("<span class=\"status running\">running</span>") != std::string::npos);
  CHECK(html.find("<span class=\"status finished\">finished</span>") != std::string::npos);
  // a finished run's page says how to take its network out of the tool; a running one's does not
  CHECK(html.find("runner export 1 --format onnx --out run-1.onnx --db ") != std::string::npos);
  CHECK(html.find("runner export 1 --format pytorch --out run-1-pytorch --db ") != std::string::npos);
  // offline: nothing is fetched (the only URL is the SVG namespace)
  for (const char* ref : {"src=\"http", "href=\"http", "url(http", "<script src", "<link"})
    CHECK(html.find(ref) == std::string::npos);
  CHECK(html.find("name=\"viewport\"") != std::string::npos);
}

namespace {
/// A halving search recorded by hand: 3 points at rung 0 (test_acc 50, 60, 60), samples 1 and 2 (tied)
/// promoted to rung 1, where sample 2 wins (70 against 65); ranked on test_acc, which must be labelled.
void fill_search(const std::string& path) {
  Store store(path);
  store.record_search(
      {"s", "sobol", "test_acc", 2, "[1, 2]",
       R"([{"key": "train.optimizer.lr", "kind": "log_uniform"}, {"key": "model.norm", "kind": "choice"}])", "s.yaml"});
  auto add = [&](int sample, int rung, const std::string& lr, const std::string& norm, double test_acc) {
    const std::string key = "sample=" + std::to_string(sample) + " train.optimizer.lr=" + lr + " model.norm=" + norm +
                            " data.limit={train: 500, test: 100} seed=1" +
                            (rung ? " rung=" + std::to_string(rung) : "");
    RunRecord r;
    r.name = "s-" + std::to_string(sample) + "-r" + std::to_string(rung);
    r.config_yaml = "x", r.config_json = "{}", r.config_hash = "h" + std::to_string(sample * 10 + rung), r.sweep = "s";
    r.epochs = rung + 1;
    const int64_t id = store.begin_run(r, "/tmp");
    store.record_epoch(id, {1, 1.0, 50, 1.0, test_acc, 0.1, 1, {}, {}});
    store.end_run(id, RunStatus::Finished, "");
    PointRow p{"s", key, r.config_hash, "{}", RunStatus::Running, "host", 1, 0};
    REQUIRE(store.claim_point(p, [](const std::string&, int64_t) { return false; }) == Claim::Claimed);
    store.update_point("s", key, RunStatus::Finished, 0, id);
  };
  add(0, 0, "0.01", "batch", 50), add(1, 0, "0.1", "group", 60), add(2, 0, "0.05", "batch", 60);
  add(1, 1, "0.1", "group", 65), add(2, 1, "0.05", "batch", 70);
}
}  // namespace

TEST_CASE("a search's view from the database: rungs, promotions, the winner, chosen on test, and its scatter per key") {
  test_util::TempDir tmp;
  fill_search(tmp / "s.db");
  Store store(tmp / "s.db");
  CHECK_FALSE(load_search_view(store, "not-a-search").has_value());
  const auto view = load_search_view(store, "s");
  REQUIRE(view.has_value());
  CHECK(view->rung_epochs == std::vector<int64_t>{1, 2});
  CHECK(view->keys == std::vector<std::string>{"train.optimizer.lr", "model.norm"});
  CHECK(view->chosen_on_test);
  REQUIRE(view->points.size() == 5);
  std::vector<std::string> seen;
  for (const auto& p : view->points)
    seen.push_back(std::to_string(p.rung) + ":" + std::to_string(p.sample) + ":" + p.values[0] + ":" + p.values[1] +
                   (p.promoted ? ":up" : "") + (p.winner ? ":winner" : ""));
  CHECK(seen == std::vector<std::string>{"0:0:0.01:batch", "0:1:0.1:group:up", "0:2:0.05:batch:up", "1:1:0.1:group",
                                         "1:2:0.05:batch:winner"});
  const std::string text = search_text(*view, "table");
  CHECK(text.find("successive halving on test_acc, eta 2, rungs of 1, 2 epochs") != std::string::npos);
  CHECK(text.find("rung 0: 3 points x 1 epochs, 3 ended, promoted 2") != std::string::npos);
  CHECK(text.find("chosen on the test split") != std::string::npos);
  const auto json = nlohmann::json::parse(search_text(*view, "json"));
  CHECK(json["chosen_on_test"] == true);
  CHECK(json["points"][4]["winner"] == true);
  CHECK(json["points"][4]["values"]["model.norm"] == "batch");
  // through the CLI: compare --sweep shows the search; --by compares its runs as runs
  const auto compare = run_runner("compare --sweep s --db " + tmp / "s.db");
  CHECK(compare.output.find("rung 1: 2 points x 2 epochs, 2 ended") != std::string::npos);
  CHECK(run_runner("compare --sweep s --by model.norm --db " + tmp / "s.db").output.find("rung 0") ==
        std::string::npos);
  // the report: one scatter per key, a circle per point with a metric, the winner ringed
  REQUIRE(run_runner("report --sweep s --db " + tmp / "s.db" + " --out " + tmp / "s.html").exit_code == 0);
  const std::string html = test_util::read_file(tmp / "s.html");
  CHECK(html.find("ranked by test_acc (chosen on test)") != std::string::npos);
  CHECK(html.find("class=\"scatter\" data-key=\"train.optimizer.lr\"") != std::string::npos);
  CHECK(html.find("class=\"scatter\" data-key=\"model.norm\"") != std::string::npos);
  size_t circles = 0;
  for (size_t at = 0; (at = html.find("<circle class=\"point\"", at)) != std::string::npos; ++at) ++circles;
  CHECK(circles == 10);  // 5 points x 2 keys
  CHECK(html.find("(log scale)") != std::string::npos);
  CHECK(html.find(">0.01</text>") != std::string::npos);  // a decade tick on the log axis
}

TEST_CASE("nice_ticks: round values, 1, 2 or 5 times a power of ten, covering the range") {
  CHECK(nice_ticks(29.8, 61.05, 4) == std::vector<double>{30, 40, 50, 60});
  CHECK(nice_ticks(0, 0.3, 3) == std::vector<double>{0, 0.1, 0.2, 0.3});
  const auto ticks = nice_ticks(1.749, 27.3, 5);
  CHECK(ticks == std::vector<double>{5, 10, 15, 20, 25});
  CHECK(nice_ticks(3, 3, 4) == std::vector<double>{3});
}

TEST_CASE("a report of 50 runs stays under 10 MB (and says how long it took)") {
  test_util::TempDir tmp;
  fill_db(tmp / "r.db", 50);
  const auto start = std::chrono::steady_clock::now();
  REQUIRE(run_runner("report --db " + tmp / "r.db" + " --out " + tmp / "report.html").exit_code == 0);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  MESSAGE("report of 50 runs: " << seconds << " s, " << fs::file_size(tmp / "report.html") / 1024 << " KiB");
  CHECK(fs::file_size(tmp / "report.html") < 10u * 1024 * 1024);
}

TEST_CASE("runner plot writes PNG pictures" * doctest::skip(!RUNNER_PNG)) {
  test_util::TempDir tmp;
  fill_db(tmp / "r.db", 3);
  for (const char* what : {"curves", "misclassified", "confusion"}) {
    CAPTURE(what);
    const std::string png = tmp / (std::string(what) + ".png");
    REQUIRE(
        run_runner(std::string("plot 1 2 3 --what ") + what + " --out " + png + " --db " + tmp / "r.db").exit_code ==
        0);
    const test_util::Rgb image = test_util::read_png(png);
    REQUIRE(!image.pixels.empty());
    const int w = image.width, h = image.height;
    const unsigned char* pixels = image.pixels.data();
    CHECK(w > 300);
    CHECK(h > 150);
    size_t coloured = 0;
    for (int i = 0; i < w * h; ++i) {
      const unsigned char* p = pixels + 3 * i;
      coloured += (std::abs(p[0] - p[1]) > 40 || std::abs(p[1] - p[2]) > 40) ? 1 : 0;
    }
    CHECK(coloured > 200);  // lines, heat map or photos: not a blank page
  }
}

TEST_CASE("runner plot writes SVG pictures") {
  test_util::TempDir tmp;
  fill_db(tmp / "r.db", 3);
  REQUIRE(run_runner("plot 1 --what curves --out " + tmp / "c.svg" + " --db " + tmp / "r.db").exit_code == 0);
  CHECK(test_util::read_file(tmp / "c.svg").find("<polyline") != std::string::npos);
}

TEST_CASE("report and plot: bad input is a clear message and a non-zero exit") {
  test_util::TempDir tmp;
  fill_db(tmp / "r.db", 1);
  auto run = run_runner("report 99 --db " + tmp / "r.db" + " --out " + tmp / "x.html");
  CHECK(run.exit_code == 5);
  CHECK(run.output.find("no run with id 99") != std::string::npos);
  { Store empty(tmp / "empty.db"); }
  run = run_runner("report --db " + tmp / "empty.db" + " --out " + tmp / "x.html");
  CHECK(run.exit_code == 5);
  CHECK(run.output.find("no runs") != std::string::npos);
  CHECK(run_runner("report --db " + tmp / "missing.db").exit_code == 5);
  std::ofstream(tmp / "file") << "x";
  run = run_runner("report --db " + tmp / "r.db" + " --out " + tmp / "file/report.html");
  CHECK(run.exit_code == 4);
  CHECK(run.output.find("file/report.html: cannot write here") != std::string::npos);
  CHECK(run_runner("plot 1 --out " + tmp / "x.jpg" + " --db " + tmp / "r.db").exit_code == 2);
  run = run_runner("plot 2 --what confusion --out " + tmp / "x.png" + " --db " + tmp / "r.db");
  CHECK(run.exit_code == 2);
  CHECK(run.output.find("run 2 is running") != std::string::npos);
}

TEST_CASE("the report renders in headless Chromium: values in the DOM, pictures on screen, no console errors") {
  if (!test_util::have_chromium()) {
    MESSAGE("SKIPPED: chromium is not installed and could not be installed (apt-get install chromium)");
    return;
  }
  test_util::TempDir tmp;
  fill_db(tmp / "r.db", 3);
  REQUIRE(run_runner("report --db " + tmp / "r.db" + " --out " + tmp / "report.html").exit_code == 0);
  const std::string url = "file://" + tmp / "report.html";

  const std::string dom = test_util::chromium("--dump-dom " + url, tmp / "profile1");
  SQLite::Database db(tmp / "r.db");
  SQLite::Statement q(db, "SELECT id, printf('%.2f', final_test_acc) FROM runs WHERE status = 'finished'");
  int checked = 0;
  while (q.executeStep()) {
    CAPTURE(q.getColumn(0).getInt());
    CHECK(dom.find("id=\"run-" + q.getColumn(0).getString() + "\"") != std::string::npos);
    CHECK(dom.find("<b class=\"final-test-acc\">" + q.getColumn(1).getString() + " %</b>") != std::string::npos);
    ++checked;
  }
  CHECK(checked == 3);
  CHECK(dom.find("<tr data-group=\"batch\"><td>batch</td><td>1</td><td>39056</td>") != std::string::npos);
  CHECK(dom.find("CONSOLE") == std::string::npos);
  CHECK(dom.find("Uncaught") == std::string::npos);

  const std::string shot = tmp / "shot.png";
  const std::string log =
      test_util::chromium("--window-size=1280,1800 --screenshot=" + shot + " " + url, tmp / "profile2");
  CHECK(log.find(":CONSOLE(") == std::string::npos);
  const test_util::Rgb image = test_util::read_png(shot);
  REQUIRE(!image.pixels.empty());
  const int w = image.width, h = image.height;
  const unsigned char* pixels = image.pixels.data();
  CHECK(w == 1280);
  size_t blue = 0, green = 0, orange = 0;  // the three norms' line colours
  for (int i = 0; i < w * h; ++i) {
    const int r = pixels[3 * i], g = pixels[3 * i + 1], b = pixels[3 * i + 2];
    blue += (b > 150 && r < 80) ? 1 : 0;
    green += (g > 130 && r < 90 && b < 90) ? 1 : 0;
    orange += (r > 220 && g > 100 && g < 160 && b < 60) ? 1 : 0;
  }
  CHECK(blue > 300);
  CHECK(green > 300);
  CHECK(orange > 300);
}
