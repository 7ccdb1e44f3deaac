// Error kinds of the four stages. main() maps each to one exit code, so every
// failure a user can cause is an exception with a message, never an abort.
#pragma once
#include <stdexcept>
#include <string>
#include <vector>

namespace runner {

/// Exit codes of the CLI. Their meanings are in exit_code_table(), the one list that `runner --help`
/// prints and the README's table is checked against (tests/test_cli.cpp).
enum ExitCode : int {
  kExitOk = 0,
  kExitInternal = 1,
  kExitConfig = 2,    ///< usage or config error: ConfigError
  kExitBudget = 3,    ///< the model breaks its parameter or epoch budget: BudgetError
  kExitData = 4,      ///< DataError
  kExitStore = 5,     ///< StoreError
  kExitDiverged = 6,  ///< training diverged (loss NaN/inf); recorded as diverged; or sweep points failed
  kExitExternal = 7,  ///< ExternalError: a program or service outside the runner failed
  kExitInterrupted = 130,
};

struct ExitCodeInfo {
  int code;
  const char* meaning;
};
/// Every exit code and what it means, in order.
const std::vector<ExitCodeInfo>& exit_code_table();
/// "Exit codes:\n  0    done\n..." for --help.
std::string exit_codes_help();

/// Where a value came from: a file position or a `--set` argument.
struct SourceLoc {
  std::string file;  ///< file name, or "--set a.b=c" for an override
  int line = 0;      ///< 1-based; 0 when unknown (then only `file` prints)
  int col = 0;
  std::string str() const;
};

/// One problem in a config: location, dotted key and the message.
struct Diagnostic {
  SourceLoc loc;
  std::string key;
  std::string message;
  std::string str() const;
};

/// The user's YAML (or --set) is wrong; carries every problem found.
class ConfigError : public std::runtime_error {
 public:
  explicit ConfigError(std::vector<Diagnostic> diags);
  explicit ConfigError(const std::string& message);
  const std::vector<Diagnostic>& diagnostics() const { return diags_; }

 private:
  std::vector<Diagnostic> diags_;
};

/// The model is valid but over its parameter budget or epoch limit.
class BudgetError : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Data files missing, truncated or malformed.
class DataError : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// The results database cannot be opened, written or read.
class StoreError : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Something outside the runner failed: sbatch refused a job, a port is taken by another program.
class ExternalError : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace runner
