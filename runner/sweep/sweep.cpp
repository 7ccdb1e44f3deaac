// `runner sweep`: load and check the points once, then one action. The parts:
// points.cpp (checking), halving.cpp (rungs and promotions), launcher.cpp
// (training here), slurm.cpp (job arrays), status.cpp (what is printed without training).
#include "runner/sweep/sweep.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <tuple>

#include "runner/base/errors.h"
#include "runner/base/text.h"
#include "runner/config/config.h"
#include "runner/config/grid.h"
#include "runner/store/store.h"
#include "runner/sweep/halving.h"
#include "runner/sweep/launcher.h"
#include "runner/sweep/points.h"
#include "runner/sweep/slurm.h"
#include "runner/sweep/status.h"

namespace runner {
namespace fs = std::filesystem;

SweepAction sweep_action(const SweepArgs& args) {
  const int modes = int{args.plan} + int{args.status} + int{args.best} + int{args.slurm};
  if (modes > 1) throw ConfigError("runner sweep: --plan, --status, --best and --slurm are exclusive; give one");
  return args.plan     ? SweepAction::Plan
         : args.status ? SweepAction::Status
         : args.best   ? SweepAction::Best
         : args.slurm  ? SweepAction::Slurm
                       : SweepAction::Train;
}

int cmd_sweep(const SweepArgs& args) {
  const SweepAction action = sweep_action(args);
  const GridSpec grid = load_grid(args.grid);
  const ExperimentSpec base = load_experiment(grid.base);
  const auto [shard, shards] = parse_shard(args.shard);
  if (args.slurm && shards != 1) throw ConfigError("--slurm makes its own shards (one per point); drop --shard");
  if (args.after_rung >= 0 && !(args.slurm && grid.halving.enabled))
    throw ConfigError("--after-rung is for the merge jobs of a halving search under --slurm");
  if (!args.from.empty()) {
    if (fs::absolute(args.from).lexically_normal() == fs::absolute(args.db).lexically_normal())
      throw ConfigError("--from " + args.from + ": the same database as --db");
    if (!fs::exists(args.from)) throw StoreError("--from " + args.from + ": no such database");
    Store(args.db).merge_from(args.from);
  }
  const std::vector<GridPoint> drawn = expand_grid(grid, base.name, base.train.seed);
  check_grid_keys(grid, base, drawn);
  const std::vector<int64_t> rungs = grid.halving.rung_epochs();
  std::vector<CheckedPoint> points = check_points(grid, rungs.empty() ? drawn : at_rung(drawn, 0, rungs[0], base));
  const size_t total = points.size();
  size_t rejected_everywhere = 0;  // over every shard: one shard's share may be all rejected by chance
  std::string first_problem;
  for (const auto& p : points)
    if (!p.problem.empty() && rejected_everywhere++ == 0) first_problem = p.problem;
  std::vector<CheckedPoint> mine;
  for (auto& p : points)
    if (p.point.index % shards == shard) mine.push_back(std::move(p));

  std::string refused;
  size_t rejected = 0;
  for (const auto& p : mine)
    if (!p.problem.empty()) {
      refused += "\n  point " + std::to_string(p.point.index) + " (" + p.point.key.text() + "): " + p.problem;
      ++rejected;
    }
  // A sampled search trains the points that pass and records the others as
  // rejected; a grid is a deliberate list, so one bad point refuses it all.
  const bool refuse_all = !refused.empty() && !grid.sampled();
  const bool trains_nothing = grid.sampled() && total > 0 && rejected_everywhere == total;
  // Looking (--plan, --status, --best) reads an existing database read-only and never creates one,
  // so a copied or committed database keeps its bytes; a refused sweep records nothing.
  std::map<std::string, PointRow> known;
  const bool looking = action == SweepAction::Plan || action == SweepAction::Status || action == SweepAction::Best;
  if (fs::exists(args.db) || (!looking && !args.slurm && !refuse_all && !trains_nothing)) {
    const auto store = looking ? Store::open_read_only(args.db) : std::make_unique<Store>(args.db);
    for (auto& row : store->sweep_points(grid.sweep)) known[row.point_key] = row;
  }

  // The plan is printed even for a sweep refused below: it shows which points are over budget.
  if (action == SweepAction::Plan) print_plan(grid, mine, total, rejected, shard, shards, known);
  if (refuse_all) {
    // A value under grid: that the experiment cannot take is the grid file's error (exit 2), at
    // its line; only points that are valid but over budget make a budget refusal (exit 3).
    std::vector<Diagnostic> located;
    std::set<std::string> seen;
    for (const auto& p : mine)
      for (const auto& d : p.config_problems) {
        const Diagnostic at = locate_in_grid(grid, d);
        if (seen.insert(at.str()).second) located.push_back(at);
      }
    std::stable_sort(located.begin(), located.end(), [](const Diagnostic& a, const Diagnostic& b) {
      return std::tie(a.loc.line, a.loc.col) < std::tie(b.loc.line, b.loc.col);
    });
    if (!located.empty()) throw ConfigError(located);
    throw BudgetError("sweep " + grid.sweep + " refused before training anything:" + refused);
  }
  // A search none of whose drawn points can train has a space that admits nothing: the search file's problem.
  if (trains_nothing)
    throw ConfigError(grid.file + ": all " + std::to_string(total) + " drawn points of search " + grid.sweep +
                      " are rejected, so it would train nothing; the first: " + first_line(first_problem) +
                      (action == SweepAction::Plan ? "" : " (--plan lists each)"));
  switch (action) {
    case SweepAction::Plan:
      return kExitOk;
    case SweepAction::Status:
      return rungs.empty() ? print_status(args, grid, mine) : print_rungs(args, grid, drawn, base);
    case SweepAction::Best:
      return print_best(args, grid, drawn, base);
    case SweepAction::Slurm:
      if (!grid.sampled()) return submit_to_slurm(args, grid, mine);
      break;
    case SweepAction::Train:
      break;
  }

  // A search records itself and its rejected points (never trained) before training or submitting.
  const bool dry = action == SweepAction::Slurm && args.dry_run;
  std::set<std::string> all_keys;  // rejected points included
  for (const auto& p : mine) all_keys.insert(p.point.key.text());
  if (grid.sampled() && !dry) Store(args.db).record_search(search_row(grid));
  if (rejected > 0 && !dry) {
    Store store(args.db);
    for (const auto& p : mine)
      if (!p.problem.empty())
        store.reject_point(PointRow{grid.sweep, p.point.key.text(), p.hash, p.config.is_null() ? "{}" : p.config.dump(),
                                    RunStatus::Rejected, "", 0, 0},
                           p.problem);
    mine.erase(std::remove_if(mine.begin(), mine.end(), [](const CheckedPoint& p) { return !p.problem.empty(); }),
               mine.end());
    std::fprintf(stderr, "sweep %s: %zu of %zu drawn points rejected (recorded, never trained; --plan says why)\n",
                 grid.sweep.c_str(), rejected, total);
  }
  if (action == SweepAction::Slurm)
    return grid.halving.enabled ? submit_halving_to_slurm(args, grid, drawn, base) : submit_to_slurm(args, grid, mine);

  // Refuse to mix runs of an old config with a changed one under the same point.
  std::string changed;
  for (const auto& p : mine) {
    const auto it = known.find(p.point.key.text());
    if (it == known.end() || it->second.config_hash == p.hash) continue;
    std::vector<std::string> diff;
    json_diff(nlohmann::json::parse(it->second.config_json, nullptr, false), p.config, "", diff);
    changed += "\n  point " + std::to_string(p.point.index) + " (" + p.point.key.text() + "): " + join(diff, "; ");
  }
  // Recorded points the grid no longer produces mean an axis or value changed
  // under existing results (appending values only adds points).
  if (shards == 1) {
    std::map<std::string, bool> now;
    for (const auto& p : mine) now[p.point.key.text()] = true;
    // A halving search's later rungs hold keys of their own (" rung=R", R > 0).
    for (const auto& [key, row] : known)
      if (!now.count(key) && !all_keys.count(key) && rung_of(key) < 1)
        changed += "\n  recorded point (" + key + ") is no longer in the grid";
  }
  if (!changed.empty())
    throw ConfigError(args.grid + ": the grid or its base changed since points of sweep '" + grid.sweep +
                      "' were recorded in " + args.db +
                      "; start a new sweep (sweep: NEW-NAME) or use another --db:" + changed);

  Store store(args.db);
  return train_points(store, args, grid, mine, total, drawn, base, shard, shards);
}

int cmd_merge(const std::string& out, const std::vector<std::string>& inputs) {
  Store store(out);
  for (const auto& input : inputs) {
    const MergeCounts counts = store.merge_from(input);
    std::printf("%s: %lld runs added, %lld already present\n", input.c_str(), static_cast<long long>(counts.added),
                static_cast<long long>(counts.skipped));
  }
  return kExitOk;
}

}  // namespace runner
