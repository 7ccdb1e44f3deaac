// runner plot IDS... --out FILE.png|svg [--what curves|misclassified|confusion] [--db DB].
#include "runner/cli/command.h"
#include "runner/cli/commands.h"
#include "runner/report/report.h"

namespace runner {

Command plot_command(CLI::App& app) {
  auto args = std::make_shared<PlotArgs>();
  args->db = kDefaultDb;
  CLI::App* cmd = add_subcommand(app, "plot", "Write one picture of runs as PNG or SVG");
  cmd->add_option("run_ids", args->run_ids, "runs to draw")->required();
  cmd->add_option("--out", args->out, "FILE.png or FILE.svg")->required();
  cmd->add_option("--what", args->what, "curves, misclassified or confusion")
      ->check(CLI::IsMember({"curves", "misclassified", "confusion"}))
      ->capture_default_str();
  add_db_option(cmd, args->db);
  return {cmd, [args] { return cmd_plot(*args); }};
}

}  // namespace runner
