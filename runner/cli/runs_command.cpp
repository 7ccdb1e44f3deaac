// runner runs [--db DB]: every recorded run and its status.
#include "runner/cli/command.h"
#include "runner/cli/commands.h"

namespace runner {

Command runs_command(CLI::App& app) {
  auto db = std::make_shared<std::string>(kDefaultDb);
  CLI::App* cmd = add_subcommand(app, "runs", "List recorded runs");
  add_db_option(cmd, *db);
  return {cmd, [db] { return cmd_runs(*db); }};
}

}  // namespace runner
