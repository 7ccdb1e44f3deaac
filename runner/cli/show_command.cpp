// runner show ID [--db DB]: one run's config and per-epoch metrics.
#include "runner/cli/command.h"

namespace runner {

Command show_command(CLI::App& app) {
  auto ref = std::make_shared<RunRef>();
  CLI::App* cmd = add_subcommand(app, "show", "Print a run's config and per-epoch metrics");
  add_run_ref(cmd, *ref);
  return {cmd, [ref] { return cmd_show(ref->run_id, ref->db); }};
}

}  // namespace runner
