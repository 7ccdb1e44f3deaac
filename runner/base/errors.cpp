#include "runner/base/errors.h"

namespace runner {

std::string SourceLoc::str() const {
  if (line <= 0) return file;
  return file + ":" + std::to_string(line) + ":" + std::to_string(col);
}

std::string Diagnostic::str() const {
  std::string out = loc.str() + ": ";
  if (!key.empty()) out += "key '" + key + "': ";
  return out + message;
}

namespace {

std::string join_diagnostics(const std::vector<Diagnostic>& diags) {
  std::string out;
  for (const auto& d : diags) out += (out.empty() ? "" : "\n") + d.str();
  return out;
}

}  // namespace

ConfigError::ConfigError(std::vector<Diagnostic> diags)
    : std::runtime_error(join_diagnostics(diags)), diags_(std::move(diags)) {}
ConfigError::ConfigError(const std::string& message) : std::runtime_error(message) {}

const std::vector<ExitCodeInfo>& exit_code_table() {
  static const std::vector<ExitCodeInfo> table{
      {kExitOk, "done"},
      {kExitInternal, "internal error (a bug: please report it)"},
      {kExitConfig, "usage or config error (the message names file:line:col and the key)"},
      {kExitBudget, "budget refusal (parameters not under budget.max_params, or epochs over budget.max_epochs)"},
      {kExitData, "data error (missing, truncated or malformed data files)"},
      {kExitStore,
       "results-store error (the SQLite database cannot be opened or written; also a full disk or an "
       "unwritable checkpoint)"},
      {kExitDiverged, "the run diverged (loss became NaN/inf; recorded as diverged), or sweep points failed"},
      {kExitExternal, "a program or service outside the runner failed (sbatch refused a job, a port is in use)"},
      {kExitInterrupted, "interrupted (Ctrl-C or SIGTERM; the run was checkpointed and recorded)"},
  };
  return table;
}

std::string exit_codes_help() {
  std::string out = "Exit codes:\n";
  for (const auto& [code, meaning] : exit_code_table()) {
    std::string number = std::to_string(code);
    out += "  " + number + std::string(5 - number.size(), ' ') + meaning + "\n";
  }
  return out;
}

}  // namespace runner
