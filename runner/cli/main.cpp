// The runner CLI: lists the commands (runner/cli/<name>_command.cpp), parses the
// arguments, calls the one chosen and maps each error class to its exit code
// (runner/base/errors.h: exit_code_table).
#include <torch/version.h>

#include <CLI/CLI.hpp>
#include <iostream>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "runner/base/errors.h"
#include "runner/base/stop_signal.h"
#include "runner/cli/command.h"
#include "runner/cli/commands.h"
#include "runner_version.h"

namespace {

std::string version_line() {
  std::string left_out;
  if (!RUNNER_FETCH) left_out += " data fetch,";
  if (!RUNNER_PNG) left_out += " PNG plots,";
  if (!RUNNER_UI) left_out += " ui,";
  if (!RUNNER_ONNX) left_out += " ONNX export,";
  if (!left_out.empty()) left_out = "; built without" + left_out.substr(0, left_out.size() - 1);
  std::string paths;
  try {
    paths = ", " + runner::cpu_code_paths();
  } catch (const std::exception&) {  // a bad RUNNER_NORM_ISA: every command reports it
  }
  return std::string("runner ") + RUNNER_VERSION + " (LibTorch " + TORCH_VERSION + paths + left_out + ")";
}

/// Training frees and reallocates the same activation sizes every step. With
/// glibc's defaults, blocks above its mmap threshold (evaluation batches, large
/// activations) and the heap's free top went back to the kernel each time, so
/// every step faulted its memory in again: 4.6 million page faults and as much
/// system as user time in a 35-step `runner bench`, evaluation 3.5x slower.
/// Keeping freed memory in the process costs nothing but the peak RSS it
/// already reached.
void keep_freed_memory() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

}  // namespace

int main(int argc, char** argv) {
  using namespace runner;
  keep_freed_memory();
  CLI::App app{"runner: declarative deep-learning experiments (YAML → checked LibTorch model → SQLite results)"};
  app.footer(exit_codes_help());
  app.set_version_flag("--version", version_line());
  app.require_subcommand(1);
  // Each command's options, validators and call: runner/cli/<name>_command.cpp.
  const std::vector<Command> commands{
      check_command(app), run_command(app),     resume_command(app), runs_command(app),
      show_command(app),  compare_command(app), data_command(app),   sweep_command(app),
      bench_command(app), merge_command(app),   report_command(app), plot_command(app),
      ui_command(app),    layers_command(app),  export_command(app), predict_command(app),
  };

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitConfig;
  }

  try {
    install_stop_signals(StopMode::Run);
    cpu_code_paths();  // a bad RUNNER_NORM_ISA is a usage error before any work
    for (const Command& command : commands)
      if (*command.app) return command.run();
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
  } catch (const ExternalError& e) {
    std::cerr << "outside the runner: " << e.what() << "\n";
    return kExitExternal;
  } catch (const std::exception& e) {
    std::cerr << "internal error: " << e.what() << "\n";
    return kExitInternal;
  }
  return kExitInternal;
}
