#include "runner/cli/command.h"

#include "runner/base/errors.h"

namespace runner {

CLI::App* add_subcommand(CLI::App& parent, const std::string& name, const std::string& description) {
  static const std::string footer = exit_codes_help();
  CLI::App* cmd = parent.add_subcommand(name, description);
  cmd->footer(footer);
  return cmd;
}

void add_experiment_args(CLI::App* cmd, std::string& file, std::vector<std::string>& sets) {
  cmd->add_option("file", file, "experiment YAML")->required();
  cmd->add_option("--set", sets, "override a key: --set train.epochs=2 (repeatable)");
}

void add_db_option(CLI::App* cmd, std::string& db) {
  cmd->add_option("--db", db, "results database")->capture_default_str();
}

void add_run_ref(CLI::App* cmd, RunRef& ref) {
  cmd->add_option("run_id", ref.run_id, "run id (see runner runs)")->required();
  add_db_option(cmd, ref.db);
}

}  // namespace runner
