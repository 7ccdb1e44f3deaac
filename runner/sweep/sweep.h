// `runner sweep`: every grid point becomes a recorded run, run by child
// `runner run` processes (--jobs at a time) that share one database. A search
// file samples its points (random, Sobol) and may train them by successive
// halving: rung after rung, promotions decided from the database alone.
#pragma once
#include <string>
#include <vector>

namespace runner {

struct SweepArgs {
  std::string grid;
  std::string db;
  bool plan = false;        ///< list the points and check them; train nothing
  int64_t jobs = 1;         ///< points at a time
  bool fail_fast = false;   ///< stop launching after the first failed point
  std::string shard;        ///< "I/N": only points with index % N == I (0-based I); halving: of the current rung
  std::string from;         ///< merge this database into --db first (a halving shard's view of earlier rungs)
  int64_t after_rung = -1;  ///< with --slurm on halving: the merge job of this rung submits the next one

  bool status = false;   ///< per-point status across the database and the SLURM shard databases
  bool best = false;     ///< print the winning point's experiment YAML
  bool slurm = false;    ///< submit a SLURM job array (one task per unfinished point) and a merge job;
                         ///< halving: one array per rung, each merge job promotes and submits the next
  bool dry_run = false;  ///< with --slurm: print the sbatch scripts, submit nothing
  std::string partition, time, gres;
  int64_t cpus_per_task = 0;  ///< 0: SLURM's default
  int64_t array_limit = 0;    ///< at most this many tasks at once; 0: no limit
};

/// What one call does: --plan, --status, --best and --slurm are modes, training here is the default.
enum class SweepAction { Plan, Status, Best, Slurm, Train };

/// The mode the options ask for; two at once is a usage error (ConfigError).
SweepAction sweep_action(const SweepArgs& args);

/// Returns 0 when every point of the shard is finished, 6 when some failed or
/// diverged, 130 when interrupted; throws ConfigError/BudgetError for a grid
/// that is invalid or whose existing points changed.
int cmd_sweep(const SweepArgs& args);

/// `runner merge OUT.db IN.db…`
int cmd_merge(const std::string& out, const std::vector<std::string>& inputs);

}  // namespace runner
