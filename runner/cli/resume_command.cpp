// runner resume ID [--db DB]: continue an interrupted run from its checkpoint.
#include "runner/cli/command.h"

namespace runner {

Command resume_command(CLI::App& app) {
  auto ref = std::make_shared<RunRef>();
  CLI::App* cmd = add_subcommand(app, "resume", "Continue an interrupted run from its checkpoint");
  add_run_ref(cmd, *ref);
  return {cmd, [ref] { return cmd_resume(ref->run_id, ref->db); }};
}

}  // namespace runner
