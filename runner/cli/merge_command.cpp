// runner merge OUT IN...: merge result databases (sweep shards) without duplicating runs.
#include "runner/cli/command.h"
#include "runner/sweep/sweep.h"

namespace runner {

Command merge_command(CLI::App& app) {
  struct Args {
    std::string out;
    std::vector<std::string> inputs;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = add_subcommand(app, "merge", "Merge result databases (e.g. sweep shards) without duplicating runs");
  cmd->add_option("out", args->out, "database to merge into (created if missing)")->required();
  cmd->add_option("inputs", args->inputs, "databases to merge from")->required();
  return {cmd, [args] { return cmd_merge(args->out, args->inputs); }};
}

}  // namespace runner
