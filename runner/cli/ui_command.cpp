// runner ui [--db DB] [--port P] [--host H]: the live, read-only web view.
#include "runner/cli/command.h"
#include "runner/cli/commands.h"
#include "runner/ui/ui.h"

namespace runner {

Command ui_command(CLI::App& app) {
  auto args = std::make_shared<UiArgs>();
  args->db = kDefaultDb;
  CLI::App* cmd = add_subcommand(app, "ui", "Serve a live, read-only web view of the results database (Ctrl-C stops)");
  add_db_option(cmd, args->db);
  cmd->add_option("--port", args->port, "TCP port (0: any free one, printed)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cmd->add_option("--host", args->host, "address to listen on; anything but 127.0.0.1 is warned about")
      ->capture_default_str();
  return {cmd, [args] { return cmd_ui(*args); }};
}

}  // namespace runner
