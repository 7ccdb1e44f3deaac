// runner show ID [--db DB]: one run's config and per-epoch metrics.
#include "runner/cli/command.h"
#include "runner/cli/commands.h"

namespace runner {

Command show_command(CLI::App& app) {
  struct Args {
    int64_t run_id = 0;
    std::string db = kDefaultDb;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = add_subcommand(app, "show", "Print a run's config and per-epoch metrics");
  cmd->add_option("run_id", args->run_id, "run id")->required();
  add_db_option(cmd, args->db);
  return {cmd, [args] { return cmd_show(args->run_id, args->db); }};
}

}  // namespace runner
