// A run's status and a sweep point's: one type for every stage. The store keeps
// the text in runs.status and sweep_points.status (its CHECK constraints list
// the same words); status_text() and parse_status() are the only spellings.
#pragma once
#include <optional>
#include <string>

namespace runner {

enum class RunStatus {
  Pending,  ///< a sweep point nothing has started yet (never stored)
  Running,
  Finished,
  Diverged,  ///< the loss became NaN/inf: recorded as the result; rerunning repeats it
  Failed,
  Interrupted,  ///< Ctrl-C or SIGTERM: checkpointed, resumable
  Rejected,     ///< a sampled point a search never trains (over budget, does not fit)
};

const char* status_text(RunStatus status);
/// nullopt for any other text.
std::optional<RunStatus> parse_status(const std::string& text);
/// Finished or diverged: the run has its result, and a sweep does not train the point again.
inline bool has_result(RunStatus status) { return status == RunStatus::Finished || status == RunStatus::Diverged; }

}  // namespace runner
