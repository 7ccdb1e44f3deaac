// runner run FILE [--set K=V]... [--db DB] [--sweep NAME]: train and record one run.
#include "runner/cli/command.h"
#include "runner/cli/commands.h"

namespace runner {

Command run_command(CLI::App& app) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* cmd = add_subcommand(app, "run", "Train an experiment and record it in the results database");
  add_experiment_args(cmd, args->file, args->sets);
  add_db_option(cmd, args->db);
  cmd->add_option("--sweep", args->sweep, "tag the run with a sweep name");
  return {cmd, [args] { return cmd_run(*args); }};
}

}  // namespace runner
