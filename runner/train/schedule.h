// Learning-rate schedules (train.schedule): constant, step, cosine, onecycle.
#pragma once
#include <cstdint>

#include "runner/config/spec.h"

namespace runner {

/// Learning rate at a global step (0-based) for the configured schedule.
double learning_rate_at(const TrainSpec& train, int64_t step, int64_t steps_per_epoch);

}  // namespace runner
