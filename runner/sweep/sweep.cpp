#include "runner/sweep/sweep.h"


#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <thread>


#include "runner/base/text.h"
#include "runner/config/config.h"
#include "runner/base/env_info.h"
#include "runner/base/errors.h"
#include "runner/config/grid.h"
#include "runner/config/plan.h"
#include "runner/config/spec_json.h"
#include "runner/store/store.h"
#include "runner/config/summary.h"

namespace runner {
namespace fs = std::filesystem;

namespace {

volatile std::sig_atomic_t g_sweep_stop = 0;  // 1: asked to stop, 2: children told
extern "C" void on_sweep_signal(int) {
  if (g_sweep_stop == 0) g_sweep_stop = 1;
}

/// A point after checking: its config, parameters and whether it may run.
struct CheckedPoint {
  GridPoint point;
  nlohmann::json config;
  std::string hash;
  int64_t params = 0;
  std::string problem;  ///< empty when the point passes config and budget
  std::vector<Diagnostic> config_problems;  ///< when the problem is the config's (not the budget's)
};

/// A point's log file: its name and config hash, not its index, which shifts when values are added to a
/// grid while an earlier sweep of it still runs (two points would share, and interleave, one log).
std::string point_log_name(const std::string& name, const std::string& hash) {
  std::string safe;
  for (char c : name) safe += std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' ? c : '_';
  return safe.substr(0, 120) + "-" + hash.substr(0, 8) + ".log";
}

std::vector<CheckedPoint> check_points(const GridSpec& grid, const std::vector<GridPoint>& points) {
  std::vector<CheckedPoint> checked;
  for (const auto& point : points) {
    CheckedPoint c{point, {}, "", 0, "", {}};
    try {
      const ExperimentSpec spec = load_experiment(grid.base, point.sets);
      const ModelPlan plan = plan_model(spec.model);
      c.params = plan.total_params;
      c.config = experiment_json(spec);
      c.hash = config_hash(c.config);
      check_param_budget(plan, spec.budget);
    } catch (const ConfigError& e) {
      c.problem = e.what();
      c.config_problems = e.diagnostics();
      if (c.config_problems.empty()) c.config_problems.push_back({SourceLoc{grid.file, 0, 0}, "", e.what()});
    } catch (const BudgetError& e) {
      c.problem = e.what();
    }
    checked.push_back(std::move(c));
  }
  return checked;
}

/// What the database records of a sampled search, for compare and the report.
SearchRow search_row(const GridSpec& grid) {
  nlohmann::json space = nlohmann::json::array();
  for (const auto& [key, d] : grid.search.space) {
    using K = Distribution::Kind;
    const char* kind = d.kind == K::Uniform ? "uniform" : d.kind == K::LogUniform ? "log_uniform" : d.kind == K::Int ? "int" : "choice";
    space.push_back({{"key", key}, {"kind", kind}});
  }
  SearchRow row{grid.sweep, grid.search.method, "", 0, "", space.dump(), fs::absolute(grid.file).string()};
  if (grid.halving.enabled) {
    row.metric = grid.halving.metric;
    row.eta = grid.halving.eta;
    row.rung_epochs_json = nlohmann::json(grid.halving.rung_epochs()).dump();
  }
  return row;
}

/// Keys whose values differ between two configs, as "key: old → new".
void json_diff(const nlohmann::json& a, const nlohmann::json& b, const std::string& path,
               std::vector<std::string>& out) {
  if (a.is_object() && b.is_object()) {
    std::map<std::string, bool> keys;
    for (const auto& item : a.items()) keys[item.key()] = true;
    for (const auto& item : b.items()) keys[item.key()] = true;
    for (const auto& [key, unused] : keys)
      json_diff(a.contains(key) ? a[key] : nlohmann::json(), b.contains(key) ? b[key] : nlohmann::json(),
                path.empty() ? key : path + "." + key, out);
  } else if (a.is_array() && b.is_array() && a.size() == b.size()) {
    for (size_t i = 0; i < a.size(); ++i) json_diff(a[i], b[i], path + "." + std::to_string(i), out);
  } else if (a != b) {
    out.push_back(path + ": " + a.dump() + " → " + b.dump());
  }
}

std::pair<int64_t, int64_t> parse_shard(const std::string& shard) {
  if (shard.empty()) return {0, 1};
  const size_t slash = shard.find('/');
  try {
    if (slash != std::string::npos) {
      const int64_t i = std::stoll(shard.substr(0, slash)), n = std::stoll(shard.substr(slash + 1));
      if (n > 0 && i >= 0 && i < n) return {i, n};
    }
  } catch (const std::exception&) {
  }
  throw ConfigError("--shard " + shard + ": expected I/N with 0 <= I < N, e.g. --shard 0/4 (SLURM: " +
                    "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT with --array=0-3)");
}

bool alive_here(const std::string& host, int64_t pid) {
  // A claim from another host cannot be checked from here: treat it as live.
  return host != host_name() || process_alive(static_cast<long>(pid));
}

/// Starts `runner run` for one point; stdout and stderr go to `log`.
pid_t spawn_run(const std::string& base, const CheckedPoint& p, const SweepArgs& args, const std::string& sweep,
                int64_t threads, const std::string& log) {
  std::vector<std::string> argv{"/proc/self/exe", "run", base};
  for (const auto& set : p.point.sets) argv.insert(argv.end(), {"--set", set});
  argv.insert(argv.end(), {"--set", "train.threads=" + std::to_string(threads), "--db", args.db, "--sweep", sweep});
  const pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);  // a killed sweep takes its runs down with it (they checkpoint)
    setpgid(0, 0);                     // Ctrl-C reaches the sweep only; it forwards exactly one SIGTERM
    std::FILE* out = std::fopen(log.c_str(), "a");
    if (out != nullptr) {
      dup2(fileno(out), STDOUT_FILENO);
      dup2(fileno(out), STDERR_FILENO);
    }
    std::vector<char*> raw;
    for (auto& a : argv) raw.push_back(a.data());
    raw.push_back(nullptr);
    // The sweep's own executable, even if the file was rebuilt or deleted since
    // the sweep started: every point of a sweep runs the same binary.
    execv("/proc/self/exe", raw.data());
    execv(self_path().c_str(), raw.data());
    std::fprintf(stderr, "cannot start %s: %s\n", self_path().c_str(), std::strerror(errno));
    _exit(127);
  }
  return pid;
}

std::string format_eta(double seconds) {
  char buf[32];
  const auto s = static_cast<long>(seconds);
  std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  return buf;
}

/// Where a SLURM sweep keeps its shard databases, scripts and logs.
std::string slurm_dir(const SweepArgs& args, const std::string& sweep) {
  const fs::path parent = fs::path(args.db).parent_path();
  return fs::absolute((parent.empty() ? fs::path(".") : parent) / "slurm" / sweep).lexically_normal().string();
}

/// Point status across the main database and every shard database: the best
/// outcome wins (finished > running > interrupted/failed/diverged).
std::map<std::string, PointRow> point_status(const SweepArgs& args, const std::string& sweep) {
  std::vector<std::string> dbs;
  if (fs::exists(args.db)) dbs.push_back(args.db);
  const std::string dir = slurm_dir(args, sweep);
  if (fs::is_directory(dir))
    for (const auto& entry : fs::directory_iterator(dir))
      if (entry.path().extension() == ".db") dbs.push_back(entry.path().string());
  auto rank = [](const std::string& status) { return status == "finished" ? 3 : status == "running" ? 2 : 1; };
  std::map<std::string, PointRow> best;
  for (const auto& db : dbs) {
    const auto store = Store::open_read_only(db);
    for (auto& row : store->sweep_points(sweep)) {
      auto it = best.find(row.point_key);
      if (it == best.end() || rank(row.status) > rank(it->second.status)) best[row.point_key] = row;
    }
  }
  return best;
}

/// Runs a command (sbatch), returning its output; throws ExternalError when it fails.
std::string run_command(const std::string& command) {
  bool ok = false;
  const std::string out = capture_command(command + " 2>&1", ok);
  if (!ok) throw ExternalError("'" + command + "' failed: " + out);
  return out;
}

/// The #SBATCH lines every script of a sweep shares.
std::string sbatch_header(const SweepArgs& args) {
  std::string header = "#!/bin/bash\n";
  if (!args.partition.empty()) header += "#SBATCH --partition=" + args.partition + "\n";
  if (!args.time.empty()) header += "#SBATCH --time=" + args.time + "\n";
  if (!args.gres.empty()) header += "#SBATCH --gres=" + args.gres + "\n";
  return header;
}

/// The scheduling options a merge job passes on to the submission it makes.
std::string slurm_options(const SweepArgs& args) {
  std::string out;
  if (!args.partition.empty()) out += " --partition " + shell_quote(args.partition);
  if (!args.time.empty()) out += " --time " + shell_quote(args.time);
  if (!args.gres.empty()) out += " --gres " + shell_quote(args.gres);
  if (args.cpus_per_task > 0) out += " --cpus-per-task " + std::to_string(args.cpus_per_task);
  if (args.array_limit > 0) out += " --array-limit " + std::to_string(args.array_limit);
  return out;
}

/// Submits one job array (task id = point index; each task trains exactly that point with
/// --shard ID/TOTAL into its own shard database) and a merge job after it (afterany).
/// `task_extra` goes on each task's command line, `after_merge` runs in the merge job after the merge.
int submit_array(const SweepArgs& args, const std::string& sweep, const std::string& job_name,
                 const std::vector<std::string>& todo, size_t total, const std::string& task_extra,
                 const std::string& after_merge, const std::string& what) {
  const std::string dir = slurm_dir(args, sweep);
  const std::string runner = shell_quote(self_path()), grid_file = shell_quote(fs::absolute(args.grid).string());
  const std::string db = shell_quote(fs::absolute(args.db).string());
  const std::string header = sbatch_header(args);
  std::string array = header + "#SBATCH --job-name=" + job_name + "\n#SBATCH --array=" + join(todo, ",") +
                      (args.array_limit > 0 ? "%" + std::to_string(args.array_limit) : "") + "\n";
  if (args.cpus_per_task > 0) array += "#SBATCH --cpus-per-task=" + std::to_string(args.cpus_per_task) + "\n";
  array += "#SBATCH --output=" + dir + "/task-%a.log\n#SBATCH --open-mode=append\n#SBATCH --chdir=" +
           fs::current_path().string() + "\nexec " + runner + " sweep " + grid_file + " --shard \"$SLURM_ARRAY_TASK_ID/" +
           std::to_string(total) + "\"" + task_extra + " --db " + shell_quote(dir) + "/shard-\"$SLURM_ARRAY_TASK_ID\".db\n";
  const std::string merge = header + "#SBATCH --job-name=" + job_name + "-merge\n#SBATCH --output=" + dir +
                            "/merge.log\n#SBATCH --open-mode=append\n#SBATCH --chdir=" + fs::current_path().string() +
                            "\nset -e\nshopt -s nullglob\n" + runner + " merge " + db + " " + shell_quote(dir) +
                            "/shard-*.db\n" + after_merge;
  if (args.dry_run) {
    std::printf("# %s/%s.sbatch\n%s\n# %s/%s-merge.sbatch (after the array: --dependency=afterany:ARRAY_JOB_ID)\n%s",
                dir.c_str(), job_name.c_str(), array.c_str(), dir.c_str(), job_name.c_str(), merge.c_str());
    return kExitOk;
  }
  fs::create_directories(dir);
  const std::string array_file = dir + "/" + job_name + ".sbatch", merge_file = dir + "/" + job_name + "-merge.sbatch";
  std::ofstream(array_file) << array;
  std::ofstream(merge_file) << merge;
  std::string array_id = run_command("sbatch --parsable " + shell_quote(array_file));
  array_id = array_id.substr(0, array_id.find_first_of(";\n"));
  std::string merge_id = run_command("sbatch --parsable --dependency=afterany:" + array_id + " " + shell_quote(merge_file));
  merge_id = merge_id.substr(0, merge_id.find_first_of(";\n"));
  std::printf("sweep %s: submitted array job %s (%s%zu of %zu points: --array=%s) and merge job %s into %s\n", sweep.c_str(),
              array_id.c_str(), what.c_str(), todo.size(), total, join(todo, ",").c_str(), merge_id.c_str(),
              args.db.c_str());
  std::printf("follow with: runner sweep %s --status --db %s\n", args.grid.c_str(), args.db.c_str());
  std::fflush(stdout);
  return kExitOk;
}

int submit_to_slurm(const SweepArgs& args, const GridSpec& grid, const std::vector<CheckedPoint>& points) {
  const auto status = point_status(args, grid.sweep);
  std::vector<std::string> todo;
  for (const auto& p : points) {
    if (!p.problem.empty()) continue;  // a search's rejected point: nothing to train
    const auto it = status.find(p.point.key);
    if (it == status.end() || it->second.status != "finished") todo.push_back(std::to_string(p.point.index));
  }
  if (todo.empty()) {
    std::printf("sweep %s: all %zu points are finished; nothing to submit\n", grid.sweep.c_str(), points.size());
    return kExitOk;
  }
  return submit_array(args, grid.sweep, grid.sweep, todo, points.size(), "", "", "");
}

int print_status(const SweepArgs& args, const GridSpec& grid, const std::vector<CheckedPoint>& points) {
  const auto status = point_status(args, grid.sweep);
  std::map<std::string, int> counts;
  std::printf("%5s  %-36s %-12s %s\n", "point", "name", "status", "overrides");
  for (const auto& p : points) {
    const auto it = status.find(p.point.key);
    const std::string state = it == status.end() ? "pending" : it->second.status;
    counts[state]++;
    std::printf("%5lld  %-36s %-12s %s\n", static_cast<long long>(p.point.index), p.point.name.c_str(), state.c_str(),
                p.point.key.c_str());
  }
  std::string summary;
  for (const auto& [state, n] : counts) summary += (summary.empty() ? "" : ", ") + std::to_string(n) + " " + state;
  std::printf("sweep %s: %zu points: %s\n", grid.sweep.c_str(), points.size(), summary.c_str());
  return kExitOk;
}

/// The first line of a (multi-line) error message.
std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

/// How many of n points rung r + 1 trains: the best 1/eta, at least one.
size_t promoted_count(size_t n, int64_t eta) { return std::max<size_t>(1, n / static_cast<size_t>(eta)); }

/// The rung a point key belongs to (" rung=R"), or -1 for a key without one.
int64_t rung_of(const std::string& key) {
  const size_t at = key.rfind(" rung=");
  return at == std::string::npos ? -1 : std::stoll(key.substr(at + 6));
}

/// The points as rung `rung` trains them: `epochs` epochs with the recipe's
/// schedule compressed to that length (onecycle and cosine follow train.epochs;
/// a step schedule's step_size is scaled), and a key and name of their own.
std::vector<GridPoint> at_rung(const std::vector<GridPoint>& points, size_t rung, int64_t epochs,
                               const ExperimentSpec& base) {
  std::vector<GridPoint> out;
  for (GridPoint p : points) {
    p.key += " rung=" + std::to_string(rung);
    p.name += "-r" + std::to_string(rung);
    for (auto& set : p.sets)
      if (set.rfind("name=", 0) == 0) set = "name=" + p.name;
    p.sets.push_back("train.epochs=" + std::to_string(epochs));
    if (base.train.schedule.type == "step") {
      const double scaled = static_cast<double>(base.train.schedule.step_size) * static_cast<double>(epochs) /
                            static_cast<double>(std::max<int64_t>(base.train.epochs, 1));
      p.sets.push_back("train.schedule.step_size=" + std::to_string(std::max<int64_t>(1, std::llround(scaled))));
    }
    out.push_back(std::move(p));
  }
  return out;
}

/// A finished point's metric from its run in the database; NaN when it has none
/// (diverged, or not finished): such a point ranks last.
double point_metric(const Store& store, const GridSpec& grid, const CheckedPoint& p) {
  const auto [run_id, status] = store.latest_run(grid.sweep, p.hash);
  if (status != "finished") return std::nan("");
  const RunRow run = store.run(run_id);
  const std::optional<double> value = grid.halving.metric == "test_acc" ? run.final_test_acc : run.final_val_acc;
  return value ? *value : std::nan("");
}

/// The indices (into `points`) of the best `keep` by metric, higher first; ties
/// and NaNs by point index, so every process promotes the same points.
std::vector<size_t> best_points(const std::vector<double>& metric, const std::vector<CheckedPoint>& points,
                                size_t keep) {
  std::vector<size_t> order(points.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const bool na = std::isnan(metric[a]), nb = std::isnan(metric[b]);
    if (na != nb) return nb;
    if (!na && metric[a] != metric[b]) return metric[a] > metric[b];
    return points[a].point.index < points[b].point.index;
  });
  order.resize(std::min(keep, order.size()));
  return order;
}

/// A rung's points, their metrics and which of them go on; empty metrics while
/// some point of the rung has not ended (finished or diverged).
struct RungState {
  std::vector<CheckedPoint> points;
  std::vector<double> metric;
  std::vector<std::string> status;
  bool complete = false;
  std::vector<size_t> promoted;  ///< indices into points
};

RungState rung_state(const Store& store, const GridSpec& grid, std::vector<CheckedPoint> points, size_t keep) {
  RungState st;
  st.points = std::move(points);
  std::map<std::string, std::string> recorded;
  for (const auto& row : store.sweep_points(grid.sweep)) recorded[row.point_key] = row.status;
  st.complete = true;
  for (const auto& p : st.points) {
    const auto it = recorded.find(p.point.key);
    std::string status = it == recorded.end() ? "pending" : it->second;
    // The run is the truth when a sweep died between its end and the point's update.
    const auto [run_id, run_status] = store.latest_run(grid.sweep, p.hash);
    if (run_status == "finished" || run_status == "diverged") status = run_status;
    st.status.push_back(status);
    st.metric.push_back(point_metric(store, grid, p));
    st.complete = st.complete && (status == "finished" || status == "diverged");
  }
  if (st.complete) st.promoted = best_points(st.metric, st.points, keep);
  return st;
}

/// Walks the rungs as far as the database has them: each complete rung's
/// promotions give the next rung's points.
std::vector<RungState> rung_states(const Store& store, const GridSpec& grid, const std::vector<GridPoint>& drawn,
                                   const ExperimentSpec& base) {
  const std::vector<int64_t> rungs = grid.halving.rung_epochs();
  std::vector<RungState> states;
  std::vector<GridPoint> current = drawn;
  for (size_t r = 0; r < rungs.size() && !current.empty(); ++r) {
    std::vector<CheckedPoint> checked;
    for (auto& c : check_points(grid, at_rung(current, r, rungs[r], base)))
      if (c.problem.empty()) checked.push_back(std::move(c));
    const size_t keep = promoted_count(checked.size(), grid.halving.eta);
    states.push_back(rung_state(store, grid, std::move(checked), keep));
    if (!states.back().complete) break;
    std::vector<GridPoint> next;
    std::vector<size_t> promoted = states.back().promoted;
    std::sort(promoted.begin(), promoted.end());  // in point order
    for (size_t i : promoted)  // back to the drawn point (its index is its position): key and name without the rung
      next.push_back(drawn[static_cast<size_t>(states.back().points[i].point.index)]);
    current = std::move(next);
  }
  return states;
}

std::string metric_text(double v) {
  if (std::isnan(v)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

/// The first rung the database has not completed; rungs.size() when the search is done.
size_t current_rung(const std::vector<RungState>& states, size_t rungs) {
  if (states.empty()) return 0;
  return states.back().complete && states.size() == rungs ? rungs : states.size() - 1;
}

/// `--slurm` for a halving search: one job array for the current rung's unfinished points, and a
/// merge job that merges the shard databases, decides the promotions from the merged database and
/// submits the next rung the same way (the `after_rung` call), until the last rung is done.
int submit_halving_to_slurm(const SweepArgs& args, const GridSpec& grid, const std::vector<GridPoint>& drawn,
                            const ExperimentSpec& base) {
  const std::vector<int64_t> rungs = grid.halving.rung_epochs();
  std::vector<RungState> states;
  if (fs::exists(args.db) || !args.dry_run) {
    Store store(args.db);
    states = rung_states(store, grid, drawn, base);
  } else {  // a dry run creates nothing: rung 0, all of it pending
    std::vector<CheckedPoint> checked;
    for (auto& c : check_points(grid, at_rung(drawn, 0, rungs[0], base)))
      if (c.problem.empty()) checked.push_back(std::move(c));
    RungState st;
    st.points = std::move(checked);
    st.status.assign(st.points.size(), "pending");
    states.push_back(std::move(st));
  }
  const size_t r = current_rung(states, rungs.size());
  if (r == rungs.size()) {
    const RungState& last = states.back();
    std::printf("sweep %s: search done (%zu rungs); winner: point %lld (%s %s); runner sweep %s --best prints it\n",
                grid.sweep.c_str(), rungs.size(), static_cast<long long>(last.points[last.promoted.at(0)].point.index),
                grid.halving.metric.c_str(), metric_text(last.metric[last.promoted[0]]).c_str(), args.grid.c_str());
    return kExitOk;
  }
  if (args.after_rung >= 0 && static_cast<int64_t>(r) <= args.after_rung) {
    // The merge job of rung R finds rung R still incomplete: failed or cancelled points. Stop here
    // instead of resubmitting them forever; the user retries with the same --slurm command.
    std::fprintf(stderr, "sweep %s: rung %zu has points that did not finish (failed or cancelled); no promotion. "
                         "runner sweep %s --slurm --db %s submits them again\n",
                 grid.sweep.c_str(), r, args.grid.c_str(), args.db.c_str());
    return kExitDiverged;
  }
  std::vector<std::string> todo;
  for (size_t i = 0; i < states[r].points.size(); ++i)
    if (states[r].status[i] != "finished" && states[r].status[i] != "diverged")
      todo.push_back(std::to_string(states[r].points[i].point.index));
  if (todo.empty()) {  // cannot happen: an incomplete rung has an unfinished point
    std::printf("sweep %s: rung %zu has nothing left to submit\n", grid.sweep.c_str(), r);
    return kExitOk;
  }
  const std::string runner = shell_quote(self_path()), grid_file = shell_quote(fs::absolute(args.grid).string());
  const std::string db = shell_quote(fs::absolute(args.db).string());
  // Each task first merges the main database in: its shard database then holds every earlier
  // rung, and derives the same promotions the merge job did.
  const std::string next = "exec " + runner + " sweep " + grid_file + " --slurm --after-rung " + std::to_string(r) +
                           slurm_options(args) + " --db " + db + "\n";
  return submit_array(args, grid.sweep, grid.sweep + "-r" + std::to_string(r), todo, drawn.size(), " --from " + db,
                      next,
                      "rung " + std::to_string(r) + " of " + std::to_string(rungs.size() - 1) + ", " +
                          std::to_string(rungs[static_cast<size_t>(r)]) + " epochs: ");
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
    std::printf("rung %zu: %zu points x %lld epochs, %s%s\n", r, st.points.size(), static_cast<long long>(rungs[r]),
                st.complete ? "complete" : "in progress",
                st.complete && r + 1 < rungs.size() ? (", promoted " + std::to_string(st.promoted.size())).c_str() : "");
    std::printf("  %5s  %-40s %-12s %10s  %s\n", "point", "name", "status", grid.halving.metric.c_str(), "promoted");
    const bool last = r + 1 == rungs.size();
    for (size_t i = 0; i < st.points.size(); ++i) {
      const bool up = std::find(st.promoted.begin(), st.promoted.end(), i) != st.promoted.end();
      const char* mark = !st.complete ? "" : !last ? (up ? "yes" : "no") : st.promoted[0] == i ? "winner" : "";
      std::printf("  %5lld  %-40s %-12s %10s  %s\n", static_cast<long long>(st.points[i].point.index),
                  st.points[i].point.name.c_str(), st.status[i].c_str(), metric_text(st.metric[i]).c_str(), mark);
    }
  }
  if (grid.halving.metric == "test_acc")
    std::printf("(promotions chosen on the test split: halving.metric is test_acc)\n");
  if (fs::is_directory(slurm_dir(args, grid.sweep)))
    std::printf("(under --slurm, a rung's runs appear here when its merge job has merged %s/shard-*.db)\n",
                slurm_dir(args, grid.sweep).c_str());
  return kExitOk;
}

/// The winner: a halving search's best point of its last rung, or the best
/// finished point (validation accuracy where recorded, else test).
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
      throw StoreError("sweep " + grid.sweep + ": the search has not finished its last rung (runner sweep " + args.grid +
                       " --status)");
    const RungState& last = states.back();
    const CheckedPoint& w = last.points[last.promoted.at(0)];
    sets = w.point.sets;
    what = w.point.key + ", " + grid.halving.metric + " " + metric_text(last.metric[last.promoted[0]]);
  } else {
    std::vector<CheckedPoint> all;
    for (auto& c : check_points(grid, drawn))
      if (c.problem.empty()) all.push_back(std::move(c));
    double best = -1;
    for (const auto& p : all) {
      const auto [run_id, status] = store.latest_run(grid.sweep, p.hash);
      if (status != "finished") continue;
      const RunRow run = store.run(run_id);
      const double v = run.final_val_acc ? *run.final_val_acc : run.final_test_acc.value_or(-1);
      if (v > best) best = v, sets = p.point.sets, what = p.point.key + (run.final_val_acc ? ", val_acc " : ", test_acc ") + metric_text(v);
    }
    if (sets.empty()) throw StoreError("sweep " + grid.sweep + ": no finished point in " + args.db);
  }
  const ExperimentSpec spec = load_experiment(grid.base, sets);
  std::printf("# the best point of sweep %s (%s)\n# from %s; runner run accepts this file as it is\n%s",
              grid.sweep.c_str(), what.c_str(), grid.file.c_str(), spec.yaml.c_str());
  return kExitOk;
}

/// What one call of run_points needs and did.
struct LaunchContext {
  Store& store;
  const SweepArgs& args;
  const GridSpec& grid;
  std::string host, log_dir;
  int64_t threads = 1;
  bool quiet_skips = false;  ///< a search waiting on other processes goes over its points again
  /// Appended to each "point … done" line (a search's rung, best so far, ETA).
  std::function<std::string(double seconds_per_point, size_t points_left)> note;
};

struct RunCounts {
  int64_t finished = 0, failed = 0, skipped = 0, not_started = 0;
  bool interrupted = false;
};

/// Claims and trains every point of `mine` it can, --jobs at a time; returns when
/// none is left to start and none of its children runs.
RunCounts run_points(LaunchContext& ctx, const std::vector<CheckedPoint>& mine) {
  // No SA_RESTART: a signal must wake waitpid() so the children hear of it.
  struct sigaction action {};
  action.sa_handler = on_sweep_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  struct Running {
    const CheckedPoint* point;
    std::chrono::steady_clock::time_point start;
  };
  std::map<pid_t, Running> running;
  int64_t finished = 0, failed = 0, skipped = 0, done_here = 0;
  double seconds_per_point = 0;
  bool stop_launching = false;
  size_t next = 0;

  while (true) {
    while (!stop_launching && !g_sweep_stop && next < mine.size() && static_cast<int64_t>(running.size()) < ctx.args.jobs) {
      const CheckedPoint& p = mine[next++];
      PointRow row{ctx.grid.sweep, p.point.key, p.hash, p.config.dump(), "running", ctx.host, static_cast<int64_t>(getpid()), 0};
      // A run orphaned by a killed sweep may still be checkpointing: it, too, holds the point.
      const auto [last_run, last_status] = ctx.store.latest_run(ctx.grid.sweep, p.hash);
      bool orphan_alive = false;
      if (last_status == "running") {
        const RunRow last = ctx.store.run(last_run);
        orphan_alive = alive_here(last.record.host, last.pid);
      }
      // A sweep killed after its point's run ended but before it noted so: the run is the truth.
      if (last_status == "finished" || last_status == "diverged") {
        if (ctx.store.claim_point(row, alive_here) == Claim::Claimed)
          ctx.store.update_point(ctx.grid.sweep, p.point.key, last_status, 0, last_run);
        ++skipped;
        if (!ctx.quiet_skips)
          std::fprintf(stderr, "  point %lld %s: already done (run %lld), skipped\n",
                       static_cast<long long>(p.point.index), p.point.name.c_str(), static_cast<long long>(last_run));
        continue;
      }
      const Claim claim = orphan_alive ? Claim::Busy : ctx.store.claim_point(row, alive_here);
      if (claim != Claim::Claimed) {
        ++skipped;
        if (!ctx.quiet_skips)
          std::fprintf(stderr, "  point %lld %s: %s, skipped\n", static_cast<long long>(p.point.index),
                       p.point.name.c_str(), claim == Claim::Done ? "already done" : "running elsewhere");
        continue;
      }
      const std::string log = ctx.log_dir + "/" + point_log_name(p.point.name, p.hash);
      // The claim stays with this sweep's pid, not the child's: a child that has
      // exited but is not yet recorded must not look abandoned to another sweep.
      // Children die with the sweep (PR_SET_PDEATHSIG), so the sweep's life is the claim's.
      const pid_t pid = spawn_run(ctx.grid.base, p, ctx.args, ctx.grid.sweep, ctx.threads, log);
      running[pid] = Running{&p, std::chrono::steady_clock::now()};
      std::fprintf(stderr, "  point %lld %s: started (pid %d)\n", static_cast<long long>(p.point.index),
                   p.point.name.c_str(), pid);
    }
    if (running.empty()) break;
    if (g_sweep_stop == 1) {  // asked to stop: each running point checkpoints and records itself
      g_sweep_stop = 2;
      for (const auto& [child, unused] : running) kill(child, SIGTERM);
    }
    int status = 0;
    const pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      break;
    }
    const auto it = running.find(pid);
    if (it == running.end()) continue;
    const CheckedPoint& p = *it->second.point;
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - it->second.start).count();
    running.erase(it);
    const auto [run_id, run_status] = ctx.store.latest_run(ctx.grid.sweep, p.hash);
    // A child that died before recording a run still leaves the point failed.
    const std::string outcome = run_status.empty() || run_status == "running" ? "failed" : run_status;
    ctx.store.update_point(ctx.grid.sweep, p.point.key, outcome, 0, run_id);
    ++done_here;
    seconds_per_point += (seconds - seconds_per_point) / static_cast<double>(done_here);
    if (outcome == "finished") {
      ++finished;
    } else if (outcome != "interrupted") {
      ++failed;
      if (ctx.args.fail_fast) stop_launching = true;
    }
    const double left = static_cast<double>(mine.size() - next + running.size()) * seconds_per_point /
                        static_cast<double>(ctx.args.jobs);
    const std::string note = ctx.note ? ctx.note(seconds_per_point, mine.size() - next + running.size()) : "";
    std::fprintf(stderr, "  point %lld %s: %s (run %lld, %.0fs); %zu/%zu through, ETA %s%s\n",
                 static_cast<long long>(p.point.index), p.point.name.c_str(), outcome.c_str(),
                 static_cast<long long>(run_id), seconds, next - running.size(), mine.size(), format_eta(left).c_str(),
                 note.c_str());
  }
  RunCounts counts;
  counts.finished = finished, counts.failed = failed, counts.skipped = skipped;
  counts.not_started = static_cast<int64_t>(mine.size() - next);
  counts.interrupted = g_sweep_stop != 0;
  return counts;
}

/// A halving search's shard (--shard I/N): this shard's points of the current rung (the
/// first one the database has not completed), then stop. Other shards write other
/// databases; merging them completes the rung, and the next call trains the next.
int run_halving_shard(LaunchContext& ctx, const std::vector<GridPoint>& drawn, const ExperimentSpec& base,
                      int64_t shard, int64_t shards) {
  const GridSpec& grid = ctx.grid;
  const std::vector<int64_t> rungs = grid.halving.rung_epochs();
  const std::vector<RungState> states = rung_states(ctx.store, grid, drawn, base);
  const size_t r = current_rung(states, rungs.size());
  if (r == rungs.size()) {
    std::printf("sweep %s: search done (%zu rungs): nothing left for shard %lld/%lld\n", grid.sweep.c_str(), rungs.size(),
                static_cast<long long>(shard), static_cast<long long>(shards));
    return kExitOk;
  }
  std::vector<CheckedPoint> part;
  for (const auto& p : states[r].points)
    if (p.point.index % shards == shard) part.push_back(p);
  std::fprintf(stderr, "sweep %s: rung %zu of %zu, shard %lld/%lld: %zu of the rung's %zu points x %lld epochs\n",
               grid.sweep.c_str(), r, rungs.size() - 1, static_cast<long long>(shard), static_cast<long long>(shards),
               part.size(), states[r].points.size(), static_cast<long long>(rungs[r]));
  const RunCounts c = run_points(ctx, part);
  std::printf("sweep %s: rung %zu, shard %lld/%lld: %lld finished, %lld failed, %lld skipped, %lld not started\n",
              grid.sweep.c_str(), r, static_cast<long long>(shard), static_cast<long long>(shards),
              static_cast<long long>(c.finished), static_cast<long long>(c.failed), static_cast<long long>(c.skipped),
              static_cast<long long>(c.not_started));
  if (c.interrupted) return kExitInterrupted;
  if (c.failed > 0 || c.not_started > 0) return kExitDiverged;
  if (r + 1 < rungs.size())
    std::printf("sweep %s: this shard's part of rung %zu is done; merge the shard databases (runner merge), then run "
                "the shards again with --from MERGED.db for rung %zu\n",
                grid.sweep.c_str(), r, r + 1);
  return kExitOk;
}

}  // namespace

int cmd_sweep(const SweepArgs& args) {
  const GridSpec grid = load_grid(args.grid);
  const ExperimentSpec base = load_experiment(grid.base);
  const auto [shard, shards] = parse_shard(args.shard);
  if (args.jobs < 1) throw ConfigError("--jobs must be at least 1");
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
  std::vector<CheckedPoint> points =
      check_points(grid, rungs.empty() ? drawn : at_rung(drawn, 0, rungs[0], base));
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
      refused += "\n  point " + std::to_string(p.point.index) + " (" + p.point.key + "): " + p.problem;
      ++rejected;
    }
  // A sampled search trains the points that pass and records the others as
  // rejected; a grid is a deliberate list, so one bad point refuses it all.
  const bool refuse_all = !refused.empty() && !grid.sampled();
  const bool trains_nothing = grid.sampled() && total > 0 && rejected_everywhere == total;
  // Looking (--plan, --status, --best) reads an existing database read-only and never creates one,
  // so a copied or committed database keeps its bytes; a refused sweep records nothing.
  std::map<std::string, PointRow> known;
  const bool looking = args.plan || args.status || args.best;
  if (fs::exists(args.db) || (!looking && !args.slurm && !refuse_all && !trains_nothing)) {
    const auto store = looking ? Store::open_read_only(args.db) : std::make_unique<Store>(args.db);
    for (auto& row : store->sweep_points(grid.sweep)) known[row.point_key] = row;
  }

  if (args.plan) {
    std::printf("sweep %s: %zu points (%s), shard %lld/%lld has %zu\n", grid.sweep.c_str(), total,
                grid.file.c_str(), static_cast<long long>(shard), static_cast<long long>(shards), mine.size());
    if (grid.sampled())
      std::printf("search: %s, %lld samples, seed %lld; %zu of the points rejected (never trained)\n",
                  grid.search.method.c_str(), static_cast<long long>(grid.search.samples),
                  static_cast<long long>(grid.search.seed), rejected);
    std::printf("%5s  %-36s %-44s %8s  %-8s %s\n", "point", "name", "overrides", "params", "budget", "status");
    for (const auto& p : mine) {
      const auto it = known.find(p.point.key);
      std::printf("%5lld  %-36s %-44s %8s  %-8s %s\n", static_cast<long long>(p.point.index), p.point.name.c_str(),
                  p.point.key.c_str(), p.params ? format_thousands(p.params).c_str() : "-",
                  p.problem.empty() ? "ok" : grid.sampled() ? "rejected" : "REFUSED",
                  it == known.end() ? "pending" : it->second.status.c_str());
      if (!p.problem.empty() && grid.sampled()) std::printf("       why: %s\n", first_line(p.problem).c_str());
    }
    if (!rungs.empty()) {
      std::printf("successive halving on %s (eta %lld)%s:\n", grid.halving.metric.c_str(),
                  static_cast<long long>(grid.halving.eta),
                  grid.halving.metric == "test_acc" ? " — chosen on the test split, and labelled so" : "");
      size_t n = mine.size() - rejected;
      int64_t epochs_total = 0;
      for (size_t r = 0; r < rungs.size(); ++r) {
        std::printf("  rung %zu: %zu points x %lld epochs\n", r, n, static_cast<long long>(rungs[r]));
        epochs_total += static_cast<int64_t>(n) * rungs[r];
        n = promoted_count(n, grid.halving.eta);
      }
      std::printf("  %lld epochs in all, against %lld for every point at %lld epochs\n",
                  static_cast<long long>(epochs_total), static_cast<long long>((mine.size() - rejected) * rungs.back()),
                  static_cast<long long>(rungs.back()));
    }
  }
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
                      (args.plan ? "" : " (--plan lists each)"));
  if (args.plan) return kExitOk;
  if (args.status && !rungs.empty()) return print_rungs(args, grid, drawn, base);
  if (args.status) return print_status(args, grid, mine);
  if (args.best) return print_best(args, grid, drawn, base);
  if (args.slurm && !grid.sampled()) return submit_to_slurm(args, grid, mine);
  std::set<std::string> all_keys;  // rejected points included
  for (const auto& p : mine) all_keys.insert(p.point.key);
  if (grid.sampled() && !(args.slurm && args.dry_run)) Store(args.db).record_search(search_row(grid));
  if (rejected > 0 && !(args.slurm && args.dry_run)) {
    Store store(args.db);
    for (const auto& p : mine)
      if (!p.problem.empty())
        store.reject_point(PointRow{grid.sweep, p.point.key, p.hash, p.config.is_null() ? "{}" : p.config.dump(),
                                    "rejected", "", 0, 0},
                           p.problem);
    mine.erase(std::remove_if(mine.begin(), mine.end(), [](const CheckedPoint& p) { return !p.problem.empty(); }),
               mine.end());
    std::fprintf(stderr, "sweep %s: %zu of %zu drawn points rejected (recorded, never trained; --plan says why)\n",
                 grid.sweep.c_str(), rejected, total);
  }
  if (args.slurm) return grid.halving.enabled ? submit_halving_to_slurm(args, grid, drawn, base)
                                              : submit_to_slurm(args, grid, mine);

  // Refuse to mix runs of an old config with a changed one under the same point.
  std::string changed;
  for (const auto& p : mine) {
    const auto it = known.find(p.point.key);
    if (it == known.end() || it->second.config_hash == p.hash) continue;
    std::vector<std::string> diff;
    json_diff(nlohmann::json::parse(it->second.config_json, nullptr, false), p.config, "", diff);
    changed += "\n  point " + std::to_string(p.point.index) + " (" + p.point.key + "): " + join(diff, "; ");
  }
  // Recorded points the grid no longer produces mean an axis or value changed
  // under existing results (appending values only adds points).
  if (shards == 1) {
    std::map<std::string, bool> now;
    for (const auto& p : mine) now[p.point.key] = true;
    // A halving search's later rungs hold keys of their own (" rung=R", R > 0).
    for (const auto& [key, row] : known)
      if (!now.count(key) && !all_keys.count(key) && rung_of(key) < 1)
        changed += "\n  recorded point (" + key + ") is no longer in the grid";
  }
  if (!changed.empty())
    throw ConfigError(args.grid + ": the grid or its base changed since points of sweep '" + grid.sweep +
                      "' were recorded in " + args.db + "; start a new sweep (sweep: NEW-NAME) or use another --db:" +
                      changed);

  Store store(args.db);
  const std::string host = host_name();
  const std::string log_dir = (fs::path(args.db).parent_path() / "logs" / grid.sweep).string();
  fs::create_directories(log_dir);
  const int64_t cores = std::max<int64_t>(1, std::thread::hardware_concurrency());
  const int64_t threads = std::max<int64_t>(1, cores / args.jobs);  // jobs share the cores, never oversubscribe

  LaunchContext ctx{store, args, grid, host, log_dir, threads, false, {}};
  if (!rungs.empty() && shards != 1) return run_halving_shard(ctx, drawn, base, shard, shards);
  const auto sweep_start = std::chrono::steady_clock::now();
  std::fprintf(stderr, "sweep %s: %zu of %zu points in shard %lld/%lld, %lld at a time with %lld threads each; logs in %s\n",
               grid.sweep.c_str(), mine.size(), total, static_cast<long long>(shard), static_cast<long long>(shards),
               static_cast<long long>(args.jobs), static_cast<long long>(threads), log_dir.c_str());
  auto summary = [&](const RunCounts& c) {
    const double minutes = std::chrono::duration<double>(std::chrono::steady_clock::now() - sweep_start).count() / 60;
    std::printf("sweep %s: %lld finished, %lld failed, %lld skipped, %lld not started (%.1f min)\n", grid.sweep.c_str(),
                static_cast<long long>(c.finished), static_cast<long long>(c.failed), static_cast<long long>(c.skipped),
                static_cast<long long>(c.not_started), minutes);
  };
  if (rungs.empty()) {
    const RunCounts c = run_points(ctx, mine);
    summary(c);
    if (c.interrupted) return kExitInterrupted;
    return c.failed > 0 || c.not_started > 0 ? kExitDiverged : kExitOk;
  }

  // Successive halving. Each rung's points are derived from the database
  // alone (rung_states), so any process, started at any time, trains the same
  // (point, rung) pairs; claims keep two processes from training one twice.
  RunCounts all;
  for (size_t r = 0; r < rungs.size(); ++r) {
    std::vector<RungState> states = rung_states(store, grid, drawn, base);
    if (states.size() <= r) break;  // the previous rung promoted nobody (cannot happen: at least one)
    const std::vector<CheckedPoint> rung_points = states[r].points;
    // Epochs still ahead, for the search's ETA: this rung's unfinished points and every later rung.
    auto future_epochs = [&](size_t left_here) {
      double epochs = static_cast<double>(left_here * static_cast<size_t>(rungs[r]));
      size_t n = rung_points.size();
      for (size_t k = r + 1; k < rungs.size(); ++k) {
        n = promoted_count(n, grid.halving.eta);
        epochs += static_cast<double>(n * static_cast<size_t>(rungs[k]));
      }
      return epochs;
    };
    ctx.note = [&](double seconds_per_point, size_t left) {
      const RungState now = rung_state(store, grid, rung_points, 1);
      double best = std::nan("");
      size_t done = 0;
      for (size_t i = 0; i < now.points.size(); ++i) {
        done += now.status[i] == "finished" || now.status[i] == "diverged";
        if (!std::isnan(now.metric[i]) && (std::isnan(best) || now.metric[i] > best)) best = now.metric[i];
      }
      const double per_epoch = seconds_per_point / static_cast<double>(rungs[r]);
      return "; rung " + std::to_string(r) + "/" + std::to_string(rungs.size() - 1) + ": " + std::to_string(done) + "/" +
             std::to_string(now.points.size()) + " done, best " + grid.halving.metric + " " + metric_text(best) +
             ", search ETA " + format_eta(per_epoch * future_epochs(left) / static_cast<double>(args.jobs));
    };
    std::fprintf(stderr, "sweep %s: rung %zu of %zu, %zu points x %lld epochs\n", grid.sweep.c_str(), r,
                 rungs.size() - 1, rung_points.size(), static_cast<long long>(rungs[r]));
    ctx.quiet_skips = false;
    while (true) {
      const RunCounts c = run_points(ctx, rung_points);
      all.finished += c.finished, all.skipped += c.skipped;
      if (c.interrupted) {
        summary(all);
        return kExitInterrupted;
      }
      const RungState st = rung_state(store, grid, rung_points, 1);
      size_t running_elsewhere = 0, failed_points = 0;
      for (const auto& status : st.status) {
        running_elsewhere += status == "running";
        failed_points += status == "failed" || status == "interrupted" || status == "pending";
      }
      if (st.complete) break;
      if (running_elsewhere == 0 || c.failed > 0) {
        all.failed += static_cast<int64_t>(failed_points);
        summary(all);
        std::fprintf(stderr, "sweep %s: rung %zu has %zu points that did not finish; promotions wait for them: run the "
                             "same command again to retry them\n", grid.sweep.c_str(), r, failed_points);
        return kExitDiverged;
      }
      // Another process trains the rest of this rung: promotions need all of it.
      if (!ctx.quiet_skips)
        std::fprintf(stderr, "sweep %s: rung %zu waits for %zu points running elsewhere\n", grid.sweep.c_str(), r,
                     running_elsewhere);
      ctx.quiet_skips = true;
      std::this_thread::sleep_for(std::chrono::seconds(2));
      if (g_sweep_stop) {
        summary(all);
        return kExitInterrupted;
      }
    }
    const RungState done = rung_states(store, grid, drawn, base)[r];
    std::string promoted;
    for (size_t i : done.promoted)
      promoted += (promoted.empty() ? "" : ", ") + std::to_string(done.points[i].point.index) + " (" +
                  metric_text(done.metric[i]) + ")";
    if (r + 1 < rungs.size())
      std::fprintf(stderr, "sweep %s: rung %zu done; promoted points %s\n", grid.sweep.c_str(), r, promoted.c_str());
    else
      std::fprintf(stderr, "sweep %s: rung %zu done; winner: point %s\n", grid.sweep.c_str(), r,
                   promoted.substr(0, promoted.find(',')).c_str());
  }
  summary(all);
  std::printf("sweep %s: search done; runner sweep %s --best prints the winner%s\n", grid.sweep.c_str(),
              args.grid.c_str(), grid.halving.metric == "test_acc" ? " (chosen on test)" : "");
  return kExitOk;
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
