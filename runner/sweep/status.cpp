#include "runner/sweep/status.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "runner/base/text.h"
#include "runner/config/config.h"
#include "runner/sweep/halving.h"
#include "runner/sweep/slurm.h"

namespace runner {
namespace fs = std::filesystem;

void print_plan(const GridSpec& grid, const std::vector<CheckedPoint>& mine, size_t total, size_t rejected,
                int64_t shard, int64_t shards, const std::map<std::string, PointRow>& known) {
  std::printf("sweep %s: %zu points (%s), shard %lld/%lld has %zu\n", grid.sweep.c_str(), total, grid.file.c_str(),
              static_cast<long long>(shard), static_cast<long long>(shards), mine.size());
  if (grid.sampled())
    std::printf("search: %s, %lld samples, seed %lld; %zu of the points rejected (never trained)\n",
                grid.search.method.c_str(), static_cast<long long>(grid.search.samples),
                static_cast<long long>(grid.search.seed), rejected);
  std::printf("%5s  %-36s %-44s %8s  %-8s %s\n", "point", "name", "overrides", "params", "budget", "status");
  for (const auto& p : mine) {
    const auto it = known.find(p.point.key.text());
    std::printf("%5lld  %-36s %-44s %8s  %-8s %s\n", static_cast<long long>(p.point.index), p.point.name.c_str(),
                p.point.key.text().c_str(), p.params ? format_thousands(p.params).c_str() : "-",
                p.problem.empty() ? "ok"
                : grid.sampled()  ? "rejected"
                                  : "REFUSED",
                status_text(it == known.end() ? RunStatus::Pending : it->second.status));
    if (!p.problem.empty() && grid.sampled()) std::printf("       why: %s\n", first_line(p.problem).c_str());
  }
  const std::vector<int64_t> rungs = grid.halving.rung_epochs();
  if (rungs.empty()) return;
  std::printf("successive halving on %s (eta %lld)%s:\n", grid.halving.metric.c_str(),
              static_cast<long long>(grid.halving.eta),
              grid.halving.metric == "test_acc" ? " — chosen on the test split, and labelled so" : "");
  const std::vector<size_t> sizes = rung_sizes(mine.size() - rejected, grid.halving.eta, rungs.size());
  int64_t epochs_total = 0;
  for (size_t r = 0; r < rungs.size(); ++r) {
    std::printf("  rung %zu: %zu points x %lld epochs\n", r, sizes[r], static_cast<long long>(rungs[r]));
    epochs_total += static_cast<int64_t>(sizes[r]) * rungs[r];
  }
  std::printf("  %lld epochs in all, against %lld for every point at %lld epochs\n",
              static_cast<long long>(epochs_total), static_cast<long long>((mine.size() - rejected) * rungs.back()),
              static_cast<long long>(rungs.back()));
}

int print_status(const SweepArgs& args, const GridSpec& grid, const std::vector<CheckedPoint>& points) {
  const auto status = point_status(args, grid.sweep);
  std::map<std::string, int> counts;
  std::printf("%5s  %-36s %-12s %s\n", "point", "name", "status", "overrides");
  for (const auto& p : points) {
    const auto it = status.find(p.point.key.text());
    const std::string state = status_text(it == status.end() ? RunStatus::Pending : it->second.status);
    counts[state]++;
    std::printf("%5lld  %-36s %-12s %s\n", static_cast<long long>(p.point.index), p.point.name.c_str(), state.c_str(),
                p.point.key.text().c_str());
  }
  std::string summary;
  for (const auto& [state, n] : counts) summary += (summary.empty() ? "" : ", ") + std::to_string(n) + " " + state;
  std::printf("sweep %s: %zu points: %s\n", grid.sweep.c_str(), points.size(), summary.c_str());
  return kExitOk;
}

int print_rungs(const SweepArgs& args, const GridSpec& grid, const std::vector<GridPoint>& drawn,
                const ExperimentSpec& base) {
  if (!fs::exists(args.db)) {
    std::printf("sweep %s: nothing recorded in %s yet\n", grid.sweep.c_str(), args.db.c_str());
    return kExitOk;
  }
  const auto store = Store::open_read_only(args.db);
  const auto states = rung_states(*store, grid, drawn, base);
  const std::vector<int64_t> rungs = grid.halving.rung_epochs();
  for (size_t r = 0; r < states.size(); ++r) {
    const RungState& st = states[r];
    std::printf(
        "rung %zu: %zu points x %lld epochs, %s%s\n", r, st.points.size(), static_cast<long long>(rungs[r]),
        st.complete ? "complete" : "in progress",
        st.complete && r + 1 < rungs.size() ? (", promoted " + std::to_string(st.promoted.size())).c_str() : "");
    std::printf("  %5s  %-40s %-12s %10s  %s\n", "point", "name", "status", grid.halving.metric.c_str(), "promoted");
    const bool last = r + 1 == rungs.size();
    for (size_t i = 0; i < st.points.size(); ++i) {
      const bool up = std::find(st.promoted.begin(), st.promoted.end(), i) != st.promoted.end();
      const char* mark = !st.complete ? "" : !last ? (up ? "yes" : "no") : st.promoted[0] == i ? "winner" : "";
      std::printf("  %5lld  %-40s %-12s %10s  %s\n", static_cast<long long>(st.points[i].point.index),
                  st.points[i].point.name.c_str(), status_text(st.status[i]), metric_text(st.metric[i]).c_str(), mark);
    }
  }
  if (grid.halving.metric == "test_acc")
    std::printf("(promotions chosen on the test split: halving.metric is test_acc)\n");
  if (fs::is_directory(slurm_dir(args, grid.sweep)))
    std::printf("(under --slurm, a rung's runs appear here when its merge job has merged %s/shard-*.db)\n",
                slurm_dir(args, grid.sweep).c_str());
  return kExitOk;
}

int print_best(const SweepArgs& args, const GridSpec& grid, const std::vector<GridPoint>& drawn,
               const ExperimentSpec& base) {
  if (!fs::exists(args.db)) throw StoreError(args.db + ": no such database; run the sweep first");
  const auto read_only = Store::open_read_only(args.db);
  const Store& store = *read_only;
  std::vector<std::string> sets;
  std::string what;
  const std::vector<int64_t> rungs = grid.halving.rung_epochs();
  if (!rungs.empty()) {
    const auto states = rung_states(store, grid, drawn, base);
    if (states.size() < rungs.size() || !states.back().complete)
      throw StoreError("sweep " + grid.sweep + ": the search has not finished its last rung (runner sweep " +
                       args.grid + " --status)");
    const RungState& last = states.back();
    const CheckedPoint& w = last.points[last.promoted.at(0)];
    sets = w.point.sets;
    what = w.point.key.text() + ", " + grid.halving.metric + " " + metric_text(last.metric[last.promoted[0]]);
  } else {
    double best = -1;
    for (const auto& p : passing(check_points(grid, drawn))) {
      const auto [run_id, status] = store.latest_run(grid.sweep, p.hash);
      if (status != RunStatus::Finished) continue;
      const RunRow run = store.run(run_id);
      const double v = run.final_val_acc ? *run.final_val_acc : run.final_test_acc.value_or(-1);
      if (v > best)
        best = v, sets = p.point.sets,
        what = p.point.key.text() + (run.final_val_acc ? ", val_acc " : ", test_acc ") + metric_text(v);
    }
    if (sets.empty()) throw StoreError("sweep " + grid.sweep + ": no finished point in " + args.db);
  }
  const ExperimentSpec spec = load_experiment(grid.base, sets);
  std::printf("# the best point of sweep %s (%s)\n# from %s; runner run accepts this file as it is\n%s",
              grid.sweep.c_str(), what.c_str(), grid.file.c_str(), spec.yaml.c_str());
  return kExitOk;
}

}  // namespace runner
