// The sweep stage's pure parts: halving arithmetic, points at a rung, the sbatch
// scripts (golden files in tests/data/sweep/), shards and modes. The sweeps that
// train are tested through the CLI (test_cli.cpp).
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "runner/base/errors.h"
#include "runner/base/text.h"
#include "runner/sweep/halving.h"
#include "runner/sweep/points.h"
#include "runner/sweep/slurm.h"
#include "runner/sweep/sweep.h"
#include "test_util.h"

using namespace runner;

TEST_CASE("halving: each rung trains the best 1/eta of the one before, at least one point") {
  CHECK(promoted_count(27, 3) == 9);
  CHECK(promoted_count(8, 3) == 2);
  CHECK(promoted_count(2, 3) == 1);
  CHECK(promoted_count(0, 3) == 1);
  CHECK(rung_sizes(27, 3, 4) == std::vector<size_t>{27, 9, 3, 1});
  CHECK(rung_sizes(12, 2, 3) == std::vector<size_t>{12, 6, 3});
  CHECK(rung_sizes(5, 3, 4) == std::vector<size_t>{5, 1, 1, 1});
  CHECK(rung_sizes(5, 3, 0).empty());
}

TEST_CASE("halving: promotions rank by metric, ties and missing metrics by point index") {
  const double nan = std::nan("");
  // positions:                    0    1    2    3    4
  const std::vector<double> metric{50, nan, 70, 70, 20};
  const std::vector<int64_t> index{4, 0, 3, 1, 2};
  CHECK(best_points(metric, index, 3) == std::vector<size_t>{3, 2, 0});
  CHECK(best_points(metric, index, 10) == std::vector<size_t>{3, 2, 0, 4, 1});
  CHECK(best_points({nan, nan}, {1, 0}, 1) == std::vector<size_t>{1});
  CHECK(best_points({}, {}, 3).empty());
}

TEST_CASE("halving: a point at a rung has its own key and name, the rung's epochs and a scaled step schedule") {
  GridPoint p{
      2, *PointKey::parse("model.norm=batch seed=1"), {"model.norm=batch", "name=bn-s1", "train.seed=1"}, "bn-s1"};
  ExperimentSpec base;
  base.train.epochs = 20;
  base.train.schedule.type = "onecycle";
  const GridPoint r1 = at_rung({p}, 1, 6, base).at(0);
  CHECK(r1.index == 2);
  CHECK(r1.key.text() == "model.norm=batch seed=1 rung=1");
  CHECK(r1.name == "bn-s1-r1");
  CHECK(r1.sets == std::vector<std::string>{"model.norm=batch", "name=bn-s1-r1", "train.seed=1", "train.epochs=6"});
  CHECK(rung_of(r1.key.text()) == 1);
  CHECK(rung_of(p.key.text()) == -1);

  base.train.schedule.type = "step";
  base.train.schedule.step_size = 10;
  CHECK(at_rung({p}, 0, 6, base).at(0).sets.back() == "train.schedule.step_size=3");
  CHECK(at_rung({p}, 0, 1, base).at(0).sets.back() == "train.schedule.step_size=1");  // never 0
}

TEST_CASE("halving: the current rung is the first one the database has not completed") {
  RungState done, open;
  done.complete = true;
  CHECK(current_rung({}, 3) == 0);
  CHECK(current_rung({open}, 3) == 0);
  CHECK(current_rung({done, open}, 3) == 1);
  CHECK(current_rung({done, done, done}, 3) == 3);
  CHECK(metric_text(std::nan("")) == "-");
  CHECK(metric_text(84.567) == "84.57");
}

TEST_CASE("sbatch scripts: a grid's array and merge job, and a halving rung's, match the golden files") {
  SweepArgs args;
  args.partition = "cpu";
  args.time = "02:00:00";
  args.cpus_per_task = 4;
  args.array_limit = 2;
  // A space in a path: every path on a command line is quoted.
  const SbatchPaths where{"/opt/runner/bin/runner", "/home/u/my grids/norms.yaml", "/home/u/results/results.db",
                          "/home/u/results/slurm/norms", "/home/u/work"};
  const SbatchScripts grid = sbatch_scripts(args, where, SbatchJob{"norms", {"0", "2", "5"}, 6, "", ""});
  CHECK(grid.array == test_util::read_file(test_util::source_path("tests/data/sweep/norms.sbatch")));
  CHECK(grid.merge == test_util::read_file(test_util::source_path("tests/data/sweep/norms-merge.sbatch")));

  args.gres = "gpu:1";
  args.array_limit = 0;
  const SbatchJob rung = halving_rung_job(args, where, "norms", 1, {"3", "7"}, 9);
  CHECK(rung.job_name == "norms-r1");
  const SbatchScripts halving = sbatch_scripts(args, where, rung);
  CHECK(halving.array == test_util::read_file(test_util::source_path("tests/data/sweep/norms-r1.sbatch")));
  CHECK(halving.merge == test_util::read_file(test_util::source_path("tests/data/sweep/norms-r1-merge.sbatch")));
}

TEST_CASE("sweep options: shards are I/N with 0 <= I < N, and one mode at a time") {
  CHECK(parse_shard("") == std::pair<int64_t, int64_t>{0, 1});
  CHECK(parse_shard("3/4") == std::pair<int64_t, int64_t>{3, 4});
  for (const char* bad : {"4/4", "-1/4", "1/0", "1", "a/b", "1/"}) CHECK_THROWS_AS(parse_shard(bad), ConfigError);

  SweepArgs args;
  CHECK(sweep_action(args) == SweepAction::Train);
  args.best = true;
  CHECK(sweep_action(args) == SweepAction::Best);
  args.slurm = true;
  CHECK_THROWS_AS(sweep_action(args), ConfigError);
}

TEST_CASE("a point's log file is named by its run name and config hash, in safe characters") {
  CHECK(point_log_name("lr=0.1 bn/s1", "0123456789abcdef") == "lr_0.1_bn_s1-01234567.log");
  CHECK(point_log_name(std::string(200, 'a'), "ffffffff00") == std::string(120, 'a') + "-ffffffff.log");
}

TEST_CASE("durations: ETA columns as H:MM:SS, progress lines as M:SS under an hour") {
  CHECK(format_hms(0) == "0:00:00");
  CHECK(format_hms(59.9) == "0:00:59");
  CHECK(format_hms(3723) == "1:02:03");
  CHECK(format_hms(std::nan("")) == "-");
  CHECK(format_hms(-1) == "-");
  CHECK(format_duration(59.6) == "1:00");
  CHECK(format_duration(123) == "2:03");
  CHECK(format_duration(3599.6) == "1:00:00");
  CHECK(format_duration(3723) == "1:02:03");
}

TEST_CASE("numbers: accuracies and metrics with two decimals (or as many as asked), a search's missing metric as -") {
  CHECK(fixed_text(75.268) == "75.27");
  CHECK(fixed_text(0.5, 0) == "0");  // printf's round-half-to-even, as every table printed it
  CHECK(fixed_text(84.7, 1) == "84.7");
  CHECK(metric_text(82.755) == fixed_text(82.755));
  CHECK(metric_text(std::nan("")) == "-");
}
