// What a run prints as it goes: a bar on a terminal, one line per epoch
// elsewhere (logs, CI), with the time left.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

#include "runner/base/text.h"  // format_duration
#include "runner/train/metrics.h"

namespace runner {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// A bar on a terminal, one plain line per epoch elsewhere (logs, CI).
class Progress {
 public:
  Progress(int64_t epochs, int64_t steps);
  void step(int64_t epoch, int64_t step, double images_per_s, double loss, double epoch_seconds);
  void epoch_done(const EpochMetrics& m, double run_eta);

 private:
  int64_t epochs_, steps_;
  bool tty_;
  Clock::time_point last_draw_{};
};

}  // namespace runner
