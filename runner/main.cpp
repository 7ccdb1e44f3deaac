// The runner CLI: parses arguments, calls one command, and maps each error kind
// to its exit code (see kExitCodesHelp).
#include <torch/version.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "runner/commands.h"
#include "runner/errors.h"
#include "runner_version.h"

namespace {

const char* const kExitCodesHelp =
    "Exit codes:\n"
    "  0    done\n"
    "  1    internal error (a bug: please report it)\n"
    "  2    usage or config error (the message names file:line:col and the key)\n"
    "  3    budget refusal (parameters not under budget.max_params, or epochs over budget.max_epochs)\n"
    "  4    data error (missing, truncated or malformed data files)\n"
    "  5    results-store error (the SQLite database cannot be opened or written)\n"
    "  130  interrupted (Ctrl-C or SIGTERM; the run was checkpointed and recorded)\n";

std::string version_line() {
  return std::string("runner ") + RUNNER_VERSION + " (LibTorch " + TORCH_VERSION + ")";
}

}  // namespace

int main(int argc, char** argv) {
  using namespace runner;
  CLI::App app{"runner: declarative deep-learning experiments (YAML → checked LibTorch model → SQLite results)"};
  app.footer(kExitCodesHelp);
  app.set_version_flag("--version", version_line());
  app.require_subcommand(1);

  CheckArgs check;
  CLI::App* check_cmd = app.add_subcommand("check", "Check an experiment: print the model summary, enforce the budget");
  check_cmd->add_option("file", check.file, "experiment YAML")->required();
  check_cmd->add_option("--set", check.sets, "override a key: --set train.epochs=2 (repeatable)");
  check_cmd->footer(kExitCodesHelp);

  CLI::App* layers_cmd = app.add_subcommand("layers", "List the layer types and norms the DSL knows");

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitConfig;
  }

  try {
    if (*check_cmd) return cmd_check(check);
    if (*layers_cmd) return cmd_layers();
  } catch (const ConfigError& e) {
    std::cerr << e.what() << "\n";
    return kExitConfig;
  } catch (const BudgetError& e) {
    std::cerr << "refused: " << e.what() << "\n";
    return kExitBudget;
  } catch (const DataError& e) {
    std::cerr << "data error: " << e.what() << "\n";
    return kExitData;
  } catch (const StoreError& e) {
    std::cerr << "results store error: " << e.what() << "\n";
    return kExitStore;
  } catch (const Interrupted& e) {
    std::cerr << e.what() << "\n";
    return kExitInterrupted;
  } catch (const std::exception& e) {
    std::cerr << "internal error: " << e.what() << "\n";
    return kExitInternal;
  }
  return kExitInternal;
}
