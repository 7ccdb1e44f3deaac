// `runner sweep --slurm`: one job array per submission (a task per unfinished
// point, each into its own shard database) and a merge job after it. The sbatch
// script text is a pure function of the options and paths (golden files in
// tests/data/sweep/); submitting is the only part that runs sbatch.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "runner/config/grid.h"
#include "runner/config/spec.h"
#include "runner/store/store.h"
#include "runner/sweep/points.h"
#include "runner/sweep/sweep.h"

namespace runner {

/// The absolute paths the scripts name: the runner binary, the grid file, the
/// main database, the sweep's SLURM folder and the folder jobs start in.
struct SbatchPaths {
  std::string runner, grid_file, db, dir, cwd;
};

/// One submission: an array over `todo` (task id = point index; each task trains exactly
/// that point with --shard ID/TOTAL) and its merge job.
struct SbatchJob {
  std::string job_name;
  std::vector<std::string> todo;
  size_t total = 0;
  std::string task_extra;   ///< on each task's command line
  std::string after_merge;  ///< runs in the merge job after the merge
};

struct SbatchScripts {
  std::string array, merge;
};

/// The two scripts' text.
SbatchScripts sbatch_scripts(const SweepArgs& args, const SbatchPaths& where, const SbatchJob& job);

/// The submission of a halving search's rung `rung`: each task first merges the main
/// database in, and the merge job submits the next rung (--after-rung).
SbatchJob halving_rung_job(const SweepArgs& args, const SbatchPaths& where, const std::string& sweep, size_t rung,
                           std::vector<std::string> todo, size_t total);

/// Where a SLURM sweep keeps its shard databases, scripts and logs.
std::string slurm_dir(const SweepArgs& args, const std::string& sweep);

/// Point status across the main database and every shard database: the best
/// outcome wins (finished > running > interrupted/failed/diverged).
std::map<std::string, PointRow> point_status(const SweepArgs& args, const std::string& sweep);

/// A grid's unfinished points as one array (nothing when all are finished).
int submit_to_slurm(const SweepArgs& args, const GridSpec& grid, const std::vector<CheckedPoint>& points);

/// A halving search: the current rung's unfinished points; each rung's merge job
/// promotes and submits the next, until the last rung is done.
int submit_halving_to_slurm(const SweepArgs& args, const GridSpec& grid, const std::vector<GridPoint>& drawn,
                            const ExperimentSpec& base);

}  // namespace runner
