#include "runner/sweep/launcher.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <thread>

#include "runner/base/env_info.h"
#include "runner/base/stop_signal.h"
#include "runner/base/text.h"
#include "runner/sweep/halving.h"

namespace runner {
namespace fs = std::filesystem;

namespace {

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
  install_stop_signals(StopMode::Supervisor);  // a signal wakes waitpid() so the children hear of it
  struct Running {
    const CheckedPoint* point;
    std::chrono::steady_clock::time_point start;
  };
  std::map<pid_t, Running> running;
  int64_t finished = 0, failed = 0, skipped = 0, done_here = 0;
  double seconds_per_point = 0;
  bool stop_launching = false, children_told = false;
  size_t next = 0;

  while (true) {
    while (!stop_launching && !stop_requested() && next < mine.size() &&
           static_cast<int64_t>(running.size()) < ctx.args.jobs) {
      const CheckedPoint& p = mine[next++];
      PointRow row{ctx.grid.sweep,
                   p.point.key.text(),
                   p.hash,
                   p.config.dump(),
                   RunStatus::Running,
                   ctx.host,
                   static_cast<int64_t>(getpid()),
                   0};
      // A run orphaned by a killed sweep may still be checkpointing: it, too, holds the point.
      const auto [last_run, last_status] = ctx.store.latest_run(ctx.grid.sweep, p.hash);
      bool orphan_alive = false;
      if (last_status == RunStatus::Running) {
        const RunRow last = ctx.store.run(last_run);
        orphan_alive = alive_here(last.record.host, last.pid);
      }
      // A sweep killed after its point's run ended but before it noted so: the run is the truth.
      if (has_result(last_status)) {
        if (ctx.store.claim_point(row, alive_here) == Claim::Claimed)
          ctx.store.update_point(ctx.grid.sweep, p.point.key.text(), last_status, 0, last_run);
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
    if (stop_requested() && !children_told) {  // each running point checkpoints and records itself
      children_told = true;
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
    const RunStatus outcome =
        run_status == RunStatus::Pending || run_status == RunStatus::Running ? RunStatus::Failed : run_status;
    ctx.store.update_point(ctx.grid.sweep, p.point.key.text(), outcome, 0, run_id);
    ++done_here;
    seconds_per_point += (seconds - seconds_per_point) / static_cast<double>(done_here);
    if (outcome == RunStatus::Finished) {
      ++finished;
    } else if (outcome != RunStatus::Interrupted) {
      ++failed;
      if (ctx.args.fail_fast) stop_launching = true;
    }
    const double left = static_cast<double>(mine.size() - next + running.size()) * seconds_per_point /
                        static_cast<double>(ctx.args.jobs);
    const std::string note = ctx.note ? ctx.note(seconds_per_point, mine.size() - next + running.size()) : "";
    std::fprintf(stderr, "  point %lld %s: %s (run %lld, %.0fs); %zu/%zu through, ETA %s%s\n",
                 static_cast<long long>(p.point.index), p.point.name.c_str(), status_text(outcome),
                 static_cast<long long>(run_id), seconds, next - running.size(), mine.size(), format_hms(left).c_str(),
                 note.c_str());
  }
  RunCounts counts;
  counts.finished = finished, counts.failed = failed, counts.skipped = skipped;
  counts.not_started = static_cast<int64_t>(mine.size() - next);
  counts.interrupted = stop_requested();
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
    std::printf("sweep %s: search done (%zu rungs): nothing left for shard %lld/%lld\n", grid.sweep.c_str(),
                rungs.size(), static_cast<long long>(shard), static_cast<long long>(shards));
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
    std::printf(
        "sweep %s: this shard's part of rung %zu is done; merge the shard databases (runner merge), then run "
        "the shards again with --from MERGED.db for rung %zu\n",
        grid.sweep.c_str(), r, r + 1);
  return kExitOk;
}

}  // namespace

int train_points(Store& store, const SweepArgs& args, const GridSpec& grid, const std::vector<CheckedPoint>& mine,
                 size_t total, const std::vector<GridPoint>& drawn, const ExperimentSpec& base, int64_t shard,
                 int64_t shards) {
  const std::vector<int64_t> rungs = grid.halving.rung_epochs();
  const std::string host = host_name();
  const std::string log_dir = (fs::path(args.db).parent_path() / "logs" / grid.sweep).string();
  fs::create_directories(log_dir);
  const int64_t cores = std::max<int64_t>(1, std::thread::hardware_concurrency());
  const int64_t threads = std::max<int64_t>(1, cores / args.jobs);  // jobs share the cores, never oversubscribe

  LaunchContext ctx{store, args, grid, host, log_dir, threads, false, {}};
  if (!rungs.empty() && shards != 1) return run_halving_shard(ctx, drawn, base, shard, shards);
  const auto sweep_start = std::chrono::steady_clock::now();
  std::fprintf(stderr,
               "sweep %s: %zu of %zu points in shard %lld/%lld, %lld at a time with %lld threads each; logs in %s\n",
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
        done += has_result(now.status[i]);
        if (!std::isnan(now.metric[i]) && (std::isnan(best) || now.metric[i] > best)) best = now.metric[i];
      }
      const double per_epoch = seconds_per_point / static_cast<double>(rungs[r]);
      return "; rung " + std::to_string(r) + "/" + std::to_string(rungs.size() - 1) + ": " + std::to_string(done) +
             "/" + std::to_string(now.points.size()) + " done, best " + grid.halving.metric + " " + metric_text(best) +
             ", search ETA " + format_hms(per_epoch * future_epochs(left) / static_cast<double>(args.jobs));
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
        running_elsewhere += status == RunStatus::Running;
        failed_points +=
            status == RunStatus::Failed || status == RunStatus::Interrupted || status == RunStatus::Pending;
      }
      if (st.complete) break;
      if (running_elsewhere == 0 || c.failed > 0) {
        all.failed += static_cast<int64_t>(failed_points);
        summary(all);
        std::fprintf(stderr,
                     "sweep %s: rung %zu has %zu points that did not finish; promotions wait for them: run the "
                     "same command again to retry them\n",
                     grid.sweep.c_str(), r, failed_points);
        return kExitDiverged;
      }
      // Another process trains the rest of this rung: promotions need all of it.
      if (!ctx.quiet_skips)
        std::fprintf(stderr, "sweep %s: rung %zu waits for %zu points running elsewhere\n", grid.sweep.c_str(), r,
                     running_elsewhere);
      ctx.quiet_skips = true;
      std::this_thread::sleep_for(std::chrono::seconds(2));
      if (stop_requested()) {
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

}  // namespace runner
