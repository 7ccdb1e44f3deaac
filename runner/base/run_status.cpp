#include "runner/base/run_status.h"

namespace runner {

namespace {
constexpr RunStatus kAll[] = {RunStatus::Pending, RunStatus::Running,     RunStatus::Finished, RunStatus::Diverged,
                              RunStatus::Failed,  RunStatus::Interrupted, RunStatus::Rejected};
}  // namespace

const char* status_text(RunStatus status) {
  switch (status) {
    case RunStatus::Pending:
      return "pending";
    case RunStatus::Running:
      return "running";
    case RunStatus::Finished:
      return "finished";
    case RunStatus::Diverged:
      return "diverged";
    case RunStatus::Failed:
      return "failed";
    case RunStatus::Interrupted:
      return "interrupted";
    case RunStatus::Rejected:
      return "rejected";
  }
  return "failed";  // unreachable: every enumerator is listed above
}

std::optional<RunStatus> parse_status(const std::string& text) {
  for (RunStatus status : kAll)
    if (text == status_text(status)) return status;
  return std::nullopt;
}

}  // namespace runner
