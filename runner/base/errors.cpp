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

}  // namespace runner
