// runner resume ID [--db DB]: continue an interrupted run from its checkpoint.
#include "runner/cli/command.h"
#include "runner/cli/commands.h"

namespace runner {

Command resume_command(CLI::App& app) {
  struct Args {
    int64_t run_id = 0;
    std::string db = kDefaultDb;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = add_subcommand(app, "resume", "Continue an interrupted run from its checkpoint");
  cmd->add_option("run_id", args->run_id, "run id (see runner runs)")->required();
  add_db_option(cmd, args->db);
  return {cmd, [args] { return cmd_resume(args->run_id, args->db); }};
}

}  // namespace runner
