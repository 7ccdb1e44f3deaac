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
#include <map>
#include <fstream>
#include <thread>

#include "runner/base/text.h"
#include "runner/config/config.h"
#include "runner/base/env_info.h"
#include "runner/base/errors.h"
#include "runner/config/grid.h"
#include "runner/config/plan.h"
#include "runner/config/spec_json.h"
#include "runner/store/store.h"
#include "runner/build/summary.h"
#include "runner/config/yaml_reader.h"

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
    CheckedPoint c{point, {}, "", 0, ""};
    try {
      const ExperimentSpec spec = load_experiment(grid.base, point.sets);
      const ModelPlan plan = plan_model(spec.model);
      c.params = plan.total_params;
      c.config = experiment_json(spec);
      c.hash = config_hash(c.config);
      check_param_budget(plan, spec.budget);
    } catch (const ConfigError& e) {
      c.problem = e.what();
    } catch (const BudgetError& e) {
      c.problem = e.what();
    }
    checked.push_back(std::move(c));
  }
  return checked;
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
    Store store(db);
    for (auto& row : store.sweep_points(sweep)) {
      auto it = best.find(row.point_key);
      if (it == best.end() || rank(row.status) > rank(it->second.status)) best[row.point_key] = row;
    }
  }
  return best;
}

/// Runs a command, returning its output; throws ConfigError when it fails.
std::string run_command(const std::string& command) {
  bool ok = false;
  const std::string out = capture_command(command + " 2>&1", ok);
  if (!ok) throw ConfigError("'" + command + "' failed: " + out);
  return out;
}

int submit_to_slurm(const SweepArgs& args, const GridSpec& grid, const std::vector<CheckedPoint>& points) {
  const auto status = point_status(args, grid.sweep);
  std::vector<std::string> todo;
  for (const auto& p : points) {
    const auto it = status.find(p.point.key);
    if (it == status.end() || it->second.status != "finished") todo.push_back(std::to_string(p.point.index));
  }
  if (todo.empty()) {
    std::printf("sweep %s: all %zu points are finished; nothing to submit\n", grid.sweep.c_str(), points.size());
    return kExitOk;
  }
  const std::string dir = slurm_dir(args, grid.sweep);
  const std::string runner = shell_quote(self_path()), grid_file = shell_quote(fs::absolute(args.grid).string());
  const std::string db = shell_quote(fs::absolute(args.db).string());
  // One task per point: the task id is the point index, and --shard ID/TOTAL selects exactly that point.
  std::string header = "#!/bin/bash\n";
  if (!args.partition.empty()) header += "#SBATCH --partition=" + args.partition + "\n";
  if (!args.time.empty()) header += "#SBATCH --time=" + args.time + "\n";
  if (!args.gres.empty()) header += "#SBATCH --gres=" + args.gres + "\n";
  std::string array = header + "#SBATCH --job-name=" + grid.sweep + "\n#SBATCH --array=" + join(todo, ",") +
                      (args.array_limit > 0 ? "%" + std::to_string(args.array_limit) : "") + "\n";
  if (args.cpus_per_task > 0) array += "#SBATCH --cpus-per-task=" + std::to_string(args.cpus_per_task) + "\n";
  array += "#SBATCH --output=" + dir + "/task-%a.log\n#SBATCH --chdir=" + fs::current_path().string() + "\n" +
           "exec " + runner + " sweep " + grid_file + " --shard \"$SLURM_ARRAY_TASK_ID/" + std::to_string(points.size()) +
           "\" --db " + shell_quote(dir) + "/shard-\"$SLURM_ARRAY_TASK_ID\".db\n";
  const std::string merge = header + "#SBATCH --job-name=" + grid.sweep + "-merge\n#SBATCH --output=" + dir +
                            "/merge.log\n#SBATCH --chdir=" + fs::current_path().string() + "\n" +
                            "shopt -s nullglob\nexec " + runner + " merge " + db + " " + shell_quote(dir) + "/shard-*.db\n";
  if (args.dry_run) {
    std::printf("# %s/array.sbatch\n%s\n# %s/merge.sbatch (after the array: --dependency=afterany:ARRAY_JOB_ID)\n%s",
                dir.c_str(), array.c_str(), dir.c_str(), merge.c_str());
    return kExitOk;
  }
  fs::create_directories(dir);
  std::ofstream(dir + "/array.sbatch") << array;
  std::ofstream(dir + "/merge.sbatch") << merge;
  std::string array_id = run_command("sbatch --parsable " + shell_quote(dir + "/array.sbatch"));
  array_id = array_id.substr(0, array_id.find_first_of(";\n"));
  std::string merge_id =
      run_command("sbatch --parsable --dependency=afterany:" + array_id + " " + shell_quote(dir + "/merge.sbatch"));
  merge_id = merge_id.substr(0, merge_id.find_first_of(";\n"));
  std::printf("sweep %s: submitted array job %s (%zu of %zu points: --array=%s) and merge job %s into %s\n",
              grid.sweep.c_str(), array_id.c_str(), todo.size(), points.size(), join(todo, ",").c_str(),
              merge_id.c_str(), args.db.c_str());
  std::printf("follow with: runner sweep %s --status --db %s\n", args.grid.c_str(), args.db.c_str());
  return kExitOk;
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

}  // namespace

int cmd_sweep(const SweepArgs& args) {
  const GridSpec grid = load_grid(args.grid);
  const ExperimentSpec base = load_experiment(grid.base);
  const auto [shard, shards] = parse_shard(args.shard);
  if (args.jobs < 1) throw ConfigError("--jobs must be at least 1");
  std::vector<CheckedPoint> points = check_points(grid, expand_grid(grid, base.name, base.train.seed));
  const size_t total = points.size();
  std::vector<CheckedPoint> mine;
  for (auto& p : points)
    if (p.point.index % shards == shard) mine.push_back(std::move(p));

  std::string refused;
  for (const auto& p : mine)
    if (!p.problem.empty()) refused += "\n  point " + std::to_string(p.point.index) + " (" + p.point.key + "): " + p.problem;
  // Planning reads an existing database but never creates one; a refused sweep records nothing.
  std::map<std::string, PointRow> known;
  if (fs::exists(args.db) || (!args.plan && !args.status && !args.slurm && refused.empty())) {
    Store store(args.db);
    for (auto& row : store.sweep_points(grid.sweep)) known[row.point_key] = row;
  }

  if (args.plan) {
    std::printf("sweep %s: %zu points (%s), shard %lld/%lld has %zu\n", grid.sweep.c_str(), total,
                grid.file.c_str(), static_cast<long long>(shard), static_cast<long long>(shards), mine.size());
    std::printf("%5s  %-36s %-44s %8s  %-8s %s\n", "point", "name", "overrides", "params", "budget", "status");
    for (const auto& p : mine) {
      const auto it = known.find(p.point.key);
      std::printf("%5lld  %-36s %-44s %8s  %-8s %s\n", static_cast<long long>(p.point.index), p.point.name.c_str(),
                  p.point.key.c_str(), p.params ? format_thousands(p.params).c_str() : "-",
                  p.problem.empty() ? "ok" : "REFUSED", it == known.end() ? "pending" : it->second.status.c_str());
    }
  }
  if (!refused.empty()) throw BudgetError("sweep " + grid.sweep + " refused before training anything:" + refused);
  if (args.plan) return kExitOk;
  if (args.status) return print_status(args, grid, mine);
  if (args.slurm) {
    if (shards != 1) throw ConfigError("--slurm makes its own shards (one per point); drop --shard");
    return submit_to_slurm(args, grid, mine);
  }

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
    for (const auto& [key, row] : known)
      if (!now.count(key)) changed += "\n  recorded point (" + key + ") is no longer in the grid";
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
  const auto sweep_start = std::chrono::steady_clock::now();
  std::fprintf(stderr, "sweep %s: %zu of %zu points in shard %lld/%lld, %lld at a time with %lld threads each; logs in %s\n",
               grid.sweep.c_str(), mine.size(), total, static_cast<long long>(shard), static_cast<long long>(shards),
               static_cast<long long>(args.jobs), static_cast<long long>(threads), log_dir.c_str());

  while (true) {
    while (!stop_launching && !g_sweep_stop && next < mine.size() && static_cast<int64_t>(running.size()) < args.jobs) {
      const CheckedPoint& p = mine[next++];
      PointRow row{grid.sweep, p.point.key, p.hash, p.config.dump(), "running", host, static_cast<int64_t>(getpid()), 0};
      // A run orphaned by a killed sweep may still be checkpointing: it, too, holds the point.
      const auto [last_run, last_status] = store.latest_run(grid.sweep, p.hash);
      bool orphan_alive = false;
      if (last_status == "running") {
        const RunRow last = store.run(last_run);
        orphan_alive = alive_here(last.record.host, last.pid);
      }
      // A sweep killed after its point's run ended but before it noted so: the run is the truth.
      if (last_status == "finished" || last_status == "diverged") {
        if (store.claim_point(row, alive_here) == Claim::Claimed)
          store.update_point(grid.sweep, p.point.key, last_status, 0, last_run);
        ++skipped;
        std::fprintf(stderr, "  point %lld %s: already done (run %lld), skipped\n", static_cast<long long>(p.point.index),
                     p.point.name.c_str(), static_cast<long long>(last_run));
        continue;
      }
      const Claim claim = orphan_alive ? Claim::Busy : store.claim_point(row, alive_here);
      if (claim != Claim::Claimed) {
        ++skipped;
        std::fprintf(stderr, "  point %lld %s: %s, skipped\n", static_cast<long long>(p.point.index),
                     p.point.name.c_str(), claim == Claim::Done ? "already done" : "running elsewhere");
        continue;
      }
      const std::string log = log_dir + "/" + point_log_name(p.point.name, p.hash);
      // The claim stays with this sweep's pid, not the child's: a child that has
      // exited but is not yet recorded must not look abandoned to another sweep.
      // Children die with the sweep (PR_SET_PDEATHSIG), so the sweep's life is the claim's.
      const pid_t pid = spawn_run(grid.base, p, args, grid.sweep, threads, log);
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
    const auto [run_id, run_status] = store.latest_run(grid.sweep, p.hash);
    // A child that died before recording a run still leaves the point failed.
    const std::string outcome = run_status.empty() || run_status == "running" ? "failed" : run_status;
    store.update_point(grid.sweep, p.point.key, outcome, 0, run_id);
    ++done_here;
    seconds_per_point += (seconds - seconds_per_point) / static_cast<double>(done_here);
    if (outcome == "finished") {
      ++finished;
    } else if (outcome != "interrupted") {
      ++failed;
      if (args.fail_fast) stop_launching = true;
    }
    const double left = static_cast<double>(mine.size() - next + running.size()) * seconds_per_point /
                        static_cast<double>(args.jobs);
    std::fprintf(stderr, "  point %lld %s: %s (run %lld, %.0fs); %zu/%zu through, ETA %s\n",
                 static_cast<long long>(p.point.index), p.point.name.c_str(), outcome.c_str(),
                 static_cast<long long>(run_id), seconds, next - running.size(), mine.size(), format_eta(left).c_str());
  }
  const double minutes = std::chrono::duration<double>(std::chrono::steady_clock::now() - sweep_start).count() / 60;
  std::printf("sweep %s: %lld finished, %lld failed, %lld skipped, %zu not started (%.1f min)\n", grid.sweep.c_str(),
              static_cast<long long>(finished), static_cast<long long>(failed), static_cast<long long>(skipped),
              mine.size() - next, minutes);
  if (g_sweep_stop) return kExitInterrupted;
  return failed > 0 || next < mine.size() ? kExitDiverged : kExitOk;
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
