// runner report [IDS...] [--sweep S] [--where K=V]... [--out FILE] [--db DB]: one offline HTML file.
#include "runner/cli/command.h"
#include "runner/cli/commands.h"
#include "runner/report/report.h"

namespace runner {

Command report_command(CLI::App& app) {
  auto args = std::make_shared<ReportArgs>();
  args->db = kDefaultDb;
  CLI::App* cmd =
      add_subcommand(app, "report", "Write one self-contained HTML report: comparison, curves, per-run pictures");
  cmd->add_option("run_ids", args->run_ids, "runs to show (default: all matching the filters)");
  cmd->add_option("--sweep", args->sweep, "only runs of this sweep (or these: a,b)");
  cmd->add_option("--where", args->where, "KEY=VALUE filter on the config (repeatable)");
  cmd->add_option("--out", args->out, "HTML file to write")->capture_default_str();
  add_db_option(cmd, args->db);
  return {cmd, [args] { return cmd_report(*args); }};
}

}  // namespace runner
