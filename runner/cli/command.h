// How a CLI command is put together: its own file (<name>_command.cpp) declares
// its options and their validators into a typed argument struct and returns
// what to call when the user chose it; main.cpp lists the commands, parses and
// maps each error class to its exit code (runner/base/errors.h).
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "runner/cli/commands.h"  // kDefaultDb

namespace runner {

struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;  ///< called with the parsed arguments when the user chose `app`
};

/// A subcommand of `parent` whose --help ends with the exit-code table.
CLI::App* add_subcommand(CLI::App& parent, const std::string& name, const std::string& description);
/// The experiment file and its --set overrides, alike for every command that reads one.
void add_experiment_args(CLI::App* cmd, std::string& file, std::vector<std::string>& sets);
/// --db, shown with its default.
void add_db_option(CLI::App* cmd, std::string& db);

/// A recorded run a command works on: its id and the database holding it.
struct RunRef {
  int64_t run_id = 0;
  std::string db = kDefaultDb;
};
/// RUN_ID (required) and --db.
void add_run_ref(CLI::App* cmd, RunRef& ref);

// One per file, in the order `runner --help` lists them.
Command check_command(CLI::App& app);
Command run_command(CLI::App& app);
Command resume_command(CLI::App& app);
Command runs_command(CLI::App& app);
Command show_command(CLI::App& app);
Command compare_command(CLI::App& app);
Command data_command(CLI::App& app);
Command sweep_command(CLI::App& app);
Command bench_command(CLI::App& app);
Command merge_command(CLI::App& app);
Command report_command(CLI::App& app);
Command plot_command(CLI::App& app);
Command ui_command(CLI::App& app);
Command layers_command(CLI::App& app);
Command export_command(CLI::App& app);
Command predict_command(CLI::App& app);

}  // namespace runner
