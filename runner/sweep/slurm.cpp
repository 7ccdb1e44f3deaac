#include "runner/sweep/slurm.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "runner/base/env_info.h"
#include "runner/base/text.h"
#include "runner/sweep/halving.h"

namespace runner {
namespace fs = std::filesystem;

namespace {

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

/// Runs a command (sbatch), returning its output; throws ExternalError when it fails.
std::string run_command(const std::string& command) {
  bool ok = false;
  const std::string out = capture_command(command + " 2>&1", ok);
  if (!ok) throw ExternalError("'" + command + "' failed: " + out);
  return out;
}

SbatchPaths paths_here(const SweepArgs& args, const std::string& sweep) {
  return SbatchPaths{self_path(), fs::absolute(args.grid).string(), fs::absolute(args.db).string(),
                     slurm_dir(args, sweep), fs::current_path().string()};
}

/// Writes and submits the array, then the merge job after it (afterany); --dry-run prints them.
int submit_array(const SweepArgs& args, const std::string& sweep, const SbatchPaths& where, const SbatchJob& job,
                 const std::string& what) {
  const SbatchScripts scripts = sbatch_scripts(args, where, job);
  const std::string& dir = where.dir;
  if (args.dry_run) {
    std::printf("# %s/%s.sbatch\n%s\n# %s/%s-merge.sbatch (after the array: --dependency=afterany:ARRAY_JOB_ID)\n%s",
                dir.c_str(), job.job_name.c_str(), scripts.array.c_str(), dir.c_str(), job.job_name.c_str(),
                scripts.merge.c_str());
    return kExitOk;
  }
  fs::create_directories(dir);
  const std::string array_file = dir + "/" + job.job_name + ".sbatch";
  const std::string merge_file = dir + "/" + job.job_name + "-merge.sbatch";
  std::ofstream(array_file) << scripts.array;
  std::ofstream(merge_file) << scripts.merge;
  std::string array_id = run_command("sbatch --parsable " + shell_quote(array_file));
  array_id = array_id.substr(0, array_id.find_first_of(";\n"));
  std::string merge_id =
      run_command("sbatch --parsable --dependency=afterany:" + array_id + " " + shell_quote(merge_file));
  merge_id = merge_id.substr(0, merge_id.find_first_of(";\n"));
  std::printf("sweep %s: submitted array job %s (%s%zu of %zu points: --array=%s) and merge job %s into %s\n",
              sweep.c_str(), array_id.c_str(), what.c_str(), job.todo.size(), job.total, join(job.todo, ",").c_str(),
              merge_id.c_str(), args.db.c_str());
  std::printf("follow with: runner sweep %s --status --db %s\n", args.grid.c_str(), args.db.c_str());
  std::fflush(stdout);
  return kExitOk;
}

}  // namespace

SbatchScripts sbatch_scripts(const SweepArgs& args, const SbatchPaths& where, const SbatchJob& job) {
  const std::string runner = shell_quote(where.runner), grid_file = shell_quote(where.grid_file);
  const std::string db = shell_quote(where.db), &dir = where.dir;
  const std::string header = sbatch_header(args);
  std::string array = header + "#SBATCH --job-name=" + job.job_name + "\n#SBATCH --array=" + join(job.todo, ",") +
                      (args.array_limit > 0 ? "%" + std::to_string(args.array_limit) : "") + "\n";
  if (args.cpus_per_task > 0) array += "#SBATCH --cpus-per-task=" + std::to_string(args.cpus_per_task) + "\n";
  array += "#SBATCH --output=" + dir + "/task-%a.log\n#SBATCH --open-mode=append\n#SBATCH --chdir=" + where.cwd +
           "\nexec " + runner + " sweep " + grid_file + " --shard \"$SLURM_ARRAY_TASK_ID/" + std::to_string(job.total) +
           "\"" + job.task_extra + " --db " + shell_quote(dir) + "/shard-\"$SLURM_ARRAY_TASK_ID\".db\n";
  std::string merge = header + "#SBATCH --job-name=" + job.job_name + "-merge\n#SBATCH --output=" + dir +
                      "/merge.log\n#SBATCH --open-mode=append\n#SBATCH --chdir=" + where.cwd +
                      "\nset -e\nshopt -s nullglob\n" + runner + " merge " + db + " " + shell_quote(dir) +
                      "/shard-*.db\n" + job.after_merge;
  return {array, merge};
}

SbatchJob halving_rung_job(const SweepArgs& args, const SbatchPaths& where, const std::string& sweep, size_t rung,
                           std::vector<std::string> todo, size_t total) {
  const std::string runner = shell_quote(where.runner), grid_file = shell_quote(where.grid_file);
  const std::string db = shell_quote(where.db);
  // Each task first merges the main database in: its shard database then holds every earlier
  // rung, and derives the same promotions the merge job did.
  const std::string next = "exec " + runner + " sweep " + grid_file + " --slurm --after-rung " + std::to_string(rung) +
                           slurm_options(args) + " --db " + db + "\n";
  return SbatchJob{sweep + "-r" + std::to_string(rung), std::move(todo), total, " --from " + db, next};
}

std::string slurm_dir(const SweepArgs& args, const std::string& sweep) {
  const fs::path parent = fs::path(args.db).parent_path();
  return fs::absolute((parent.empty() ? fs::path(".") : parent) / "slurm" / sweep).lexically_normal().string();
}

std::map<std::string, PointRow> point_status(const SweepArgs& args, const std::string& sweep) {
  std::vector<std::string> dbs;
  if (fs::exists(args.db)) dbs.push_back(args.db);
  const std::string dir = slurm_dir(args, sweep);
  if (fs::is_directory(dir))
    for (const auto& entry : fs::directory_iterator(dir))
      if (entry.path().extension() == ".db") dbs.push_back(entry.path().string());
  auto rank = [](RunStatus status) { return status == RunStatus::Finished ? 3 : status == RunStatus::Running ? 2 : 1; };
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

int submit_to_slurm(const SweepArgs& args, const GridSpec& grid, const std::vector<CheckedPoint>& points) {
  const auto status = point_status(args, grid.sweep);
  std::vector<std::string> todo;
  for (const auto& p : points) {
    if (!p.problem.empty()) continue;  // a search's rejected point: nothing to train
    const auto it = status.find(p.point.key.text());
    if (it == status.end() || it->second.status != RunStatus::Finished) todo.push_back(std::to_string(p.point.index));
  }
  if (todo.empty()) {
    std::printf("sweep %s: all %zu points are finished; nothing to submit\n", grid.sweep.c_str(), points.size());
    return kExitOk;
  }
  const SbatchJob job{grid.sweep, todo, points.size(), "", ""};
  return submit_array(args, grid.sweep, paths_here(args, grid.sweep), job, "");
}

int submit_halving_to_slurm(const SweepArgs& args, const GridSpec& grid, const std::vector<GridPoint>& drawn,
                            const ExperimentSpec& base) {
  const std::vector<int64_t> rungs = grid.halving.rung_epochs();
  std::vector<RungState> states;
  if (fs::exists(args.db) || !args.dry_run) {
    Store store(args.db);
    states = rung_states(store, grid, drawn, base);
  } else {  // a dry run creates nothing: rung 0, all of it pending
    RungState st;
    st.points = passing(check_points(grid, at_rung(drawn, 0, rungs[0], base)));
    st.status.assign(st.points.size(), RunStatus::Pending);
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
    std::fprintf(stderr,
                 "sweep %s: rung %zu has points that did not finish (failed or cancelled); no promotion. "
                 "runner sweep %s --slurm --db %s submits them again\n",
                 grid.sweep.c_str(), r, args.grid.c_str(), args.db.c_str());
    return kExitDiverged;
  }
  std::vector<std::string> todo;
  for (size_t i = 0; i < states[r].points.size(); ++i)
    if (!has_result(states[r].status[i])) todo.push_back(std::to_string(states[r].points[i].point.index));
  if (todo.empty()) {  // cannot happen: an incomplete rung has an unfinished point
    std::printf("sweep %s: rung %zu has nothing left to submit\n", grid.sweep.c_str(), r);
    return kExitOk;
  }
  const SbatchPaths where = paths_here(args, grid.sweep);
  const SbatchJob job = halving_rung_job(args, where, grid.sweep, r, std::move(todo), drawn.size());
  return submit_array(args, grid.sweep, where, job,
                      "rung " + std::to_string(r) + " of " + std::to_string(rungs.size() - 1) + ", " +
                          std::to_string(rungs[r]) + " epochs: ");
}

}  // namespace runner
