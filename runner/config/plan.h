// Stage 2a, torch-free: walk the layer specs carrying the shape, produce the
// summary rows and count parameters (mlpack's shape inference and weight
// counting, kept apart from building modules). The builder cross-checks its
// modules against this plan.
#pragma once
#include "layers/layer_def.h"
#include "runner/config/spec.h"

namespace runner {

struct ModelPlan {
  std::vector<SummaryRow> rows;
  Shape input;
  Shape output;
  int64_t total_params = 0;   ///< every parameter: what the budget limits
  int64_t frozen_params = 0;  ///< of those, the ones not trained
};

/// Throws ConfigError naming the failing layer and the one before it when a
/// shape does not fit, or when the output is not `classes` logits.
ModelPlan plan_model(const ModelSpec& model);

/// Throws BudgetError unless total_params < budget.max_params; the message
/// gives the count, the budget and the three largest layers.
void check_param_budget(const ModelPlan& plan, const BudgetSpec& budget);

}  // namespace runner
