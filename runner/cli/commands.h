// The work of the commands that wire the core stages together (check, run,
// resume, runs, show, compare, bench, layers, data fetch). Their options live in
// <name>_command.cpp; main.cpp maps the exceptions these throw to exit codes.
#pragma once
#include <string>
#include <vector>

#include "runner/report/compare.h"

namespace runner {

constexpr const char* kDefaultDb = "results/results.db";

struct CheckArgs {
  std::string file;
  std::vector<std::string> sets;
};

struct RunArgs {
  std::string file;
  std::vector<std::string> sets;
  std::string db = kDefaultDb;
  std::string sweep;  ///< tag recorded with the run
};

/// Which CPU code paths this process takes, e.g. "norm kernels avx2, oneDNN max AVX2,
/// ATen avx2": the copy of our norm kernels in use and the ISA caps set for oneDNN
/// (ONEDNN_MAX_CPU_ISA) and ATen (ATEN_CPU_CAPABILITY). Float results are
/// identical only along the same paths. ConfigError for a bad RUNNER_NORM_ISA.
std::string cpu_code_paths();

int cmd_check(const CheckArgs& args);
int cmd_layers();
/// Trains and records one experiment. Returns 0 finished, 6 diverged, 130 interrupted.
int cmd_run(const RunArgs& args);
int cmd_resume(int64_t run_id, const std::string& db);
int cmd_runs(const std::string& db);
int cmd_show(int64_t run_id, const std::string& db);
int cmd_compare(const CompareOptions& options, const std::string& db);
struct BenchArgs {
  std::string file;
  std::vector<std::string> sets;
  int64_t steps = 30;
  int64_t warmup = 5;
  int64_t batch = 0;    ///< 0: train.batch_size
  int64_t threads = 0;  ///< 0: train.threads
  bool json = false;
  bool profile = false;  ///< also where the time goes, per layer type
};
/// Steady-state training and evaluation images/s of an experiment's model.
int cmd_bench(const BenchArgs& args);

int cmd_data_fetch(const std::string& dataset, const std::string& dir, const std::string& url);

/// Installs SIGINT/SIGTERM handlers that ask a running training to stop.

}  // namespace runner
