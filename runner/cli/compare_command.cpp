// runner compare [--by KEYS] [--where K=V]... [--sweep S] [--rank val|test] [--format F] [--db DB].
#include "runner/cli/command.h"
#include "runner/cli/commands.h"

namespace runner {

Command compare_command(CLI::App& app) {
  struct Args {
    CompareOptions options;
    std::string db = kDefaultDb;
  };
  auto args = std::make_shared<Args>();
  CompareOptions& compare = args->options;
  CLI::App* cmd = add_subcommand(app, "compare", "Compare finished runs grouped by a config key (mean ± std)");
  CLI::Option* by =
      cmd->add_option("--by", compare.by, "dotted config key(s), e.g. model.norm or model.norm,model.standardize")
          ->capture_default_str();
  cmd->add_option("--where", compare.where, "KEY=VALUE filter on the config (repeatable)");
  cmd->add_option("--sweep", compare.sweep, "only runs of this sweep (or these: a,b)");
  cmd->add_option("--rank", compare.rank,
                  "order groups best first by final validation (val) or test accuracy; pick recipes by val");
  cmd->add_option("--format", compare.format, "table, markdown, csv or json")
      ->check(CLI::IsMember({"table", "markdown", "csv", "json"}))
      ->capture_default_str();
  add_db_option(cmd, args->db);
  return {cmd, [args, by] {
            args->options.by_given = by->count() > 0;
            return cmd_compare(args->options, args->db);
          }};
}

}  // namespace runner
