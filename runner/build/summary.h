// The model summary table, in the format of the seed study (torchsummary's).
#pragma once
#include <string>

#include "runner/config/plan.h"

namespace runner {

/// The whole table: rows numbered Conv2d-1, ReLU-2, …, totals and sizes.
std::string format_summary(const ModelPlan& plan);

}  // namespace runner
