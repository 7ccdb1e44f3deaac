// norm: group — GroupNorm(groups, C): statistics per group of C/groups channels
// per sample, per-channel affine (2·C parameters). groups must divide C.
//
//   model: {norm: group, groups: 4}
#include "layers/norm_kernels.h"
#include "layers/registry.h"

namespace runner {
namespace {

NormDef group_norm_def() {
  return NormDef{"group", "GroupNorm", [](int64_t channels, int64_t) { return 2 * channels; },
                 [](int64_t channels, int64_t groups) {
                   if (groups > 0 && channels % groups == 0) return std::string{};
                   return "groups " + std::to_string(groups) + " must divide the " + std::to_string(channels) +
                          " channels here (GroupNorm(groups, C))";
                 }};
}

torch::nn::AnyModule make_group_norm(int64_t channels, int64_t groups) {
  return torch::nn::AnyModule(GroupNorm(groups, channels));
}

}  // namespace
RUNNER_REGISTER_NORM(group_norm_def, make_group_norm);
}  // namespace runner
