// The model summary table, in the format of the seed study (torchsummary's).
#pragma once
#include <string>

#include "runner/plan.h"

namespace runner {

/// 39056 -> "39,056".
std::string format_thousands(int64_t value);

/// The whole table: rows numbered Conv2d-1, ReLU-2, …, totals and sizes.
std::string format_summary(const ModelPlan& plan);

}  // namespace runner
