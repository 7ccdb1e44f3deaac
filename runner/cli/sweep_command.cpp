// runner sweep GRID [--plan | --status | --best | --slurm ...] [--jobs N] ...: a grid or search, resumable.
#include "runner/cli/command.h"
#include "runner/cli/commands.h"
#include "runner/sweep/sweep.h"

namespace runner {

Command sweep_command(CLI::App& app) {
  auto args = std::make_shared<SweepArgs>();
  SweepArgs& sweep = *args;
  sweep.db = kDefaultDb;
  CLI::App* cmd = add_subcommand(app, "sweep", "Run every point of a grid file as a recorded run (resumable)");
  cmd->add_option("grid", sweep.grid, "grid YAML")->required();
  CLI::Option* plan_flag =
      cmd->add_flag("--plan", sweep.plan, "list the points with parameters and budget check; train nothing");
  cmd->add_option("--jobs", sweep.jobs, "points at a time, each in its own process")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_flag("--fail-fast", sweep.fail_fast, "start no more points after one fails");
  cmd->add_option("--shard", sweep.shard,
                  "I/N: run only slice I (0-based) of N, e.g. for a SLURM array; "
                  "halving: of the current rung only");
  cmd->add_option("--from", sweep.from,
                  "merge this database into --db first (a halving shard: the merged "
                  "earlier rungs decide its points)");
  cmd->add_option("--after-rung", sweep.after_rung,
                  "halving under --slurm (the merge jobs use it): submit the "
                  "rung after R, or stop if R did not complete");
  add_db_option(cmd, sweep.db);
  CLI::Option* status_flag = cmd->add_flag("--status", sweep.status,
                                           "per-point status across the database and SLURM shard databases; "
                                           "with halving, each rung's points, metric and promotions");
  CLI::Option* best_flag =
      cmd->add_flag("--best", sweep.best, "print the winning point as a complete experiment YAML for runner run");
  CLI::Option* slurm_flag =
      cmd->add_flag("--slurm", sweep.slurm,
                    "submit a SLURM job array (one task per unfinished point) and a "
                    "merge job; halving: one array per rung, each merge job promotes and submits the next");
  // Without --slurm these would be ignored and the sweep would train here: `--dry-run` alone once ran a
  // whole grid. A usage error instead.
  for (CLI::Option* o : {cmd->add_flag("--dry-run", sweep.dry_run, "print the sbatch scripts, submit nothing"),
                         cmd->add_option("--partition", sweep.partition, "SLURM partition"),
                         cmd->add_option("--time", sweep.time, "SLURM time limit per task, HH:MM:SS"),
                         cmd->add_option("--cpus-per-task", sweep.cpus_per_task, "SLURM CPUs per task"),
                         cmd->add_option("--gres", sweep.gres, "SLURM generic resources, e.g. gpu:1"),
                         cmd->add_option("--array-limit", sweep.array_limit, "at most K array tasks at once")})
    o->needs(slurm_flag);
  // One mode at a time: `--plan --slurm` once quietly meant --plan.
  const std::vector<CLI::Option*> modes{plan_flag, status_flag, best_flag, slurm_flag};
  for (CLI::Option* a : modes)
    for (CLI::Option* b : modes)
      if (a != b) a->excludes(b);
  return {cmd, [args] { return cmd_sweep(*args); }};
}

}  // namespace runner
