// The model summary table, in the format of the seed study (torchsummary's).
#pragma once
#include <string>

#include "runner/config/plan.h"

namespace runner {

/// The whole table: rows numbered Conv2d-1, ReLU-2, …, totals and sizes.
std::string format_summary(const ModelPlan& plan);

/// Which rows of that table each `model.blocks` use became, with its arguments
/// and parameters; "" when the model uses no block.
std::string format_block_uses(const ModelPlan& plan, const std::vector<BlockUseSpec>& uses);

}  // namespace runner
