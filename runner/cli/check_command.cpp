// runner check FILE [--set K=V]...: the summary table and the budget check.
#include "runner/cli/command.h"
#include "runner/cli/commands.h"

namespace runner {

Command check_command(CLI::App& app) {
  auto args = std::make_shared<CheckArgs>();
  CLI::App* cmd = add_subcommand(app, "check", "Check an experiment: print the model summary, enforce the budget");
  add_experiment_args(cmd, args->file, args->sets);
  return {cmd, [args] { return cmd_check(*args); }};
}

}  // namespace runner
