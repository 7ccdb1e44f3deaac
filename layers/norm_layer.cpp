// norm: layer — GroupNorm(1, C): statistics over all of C·H·W per sample, with
// a per-channel affine (2·C parameters), as the seed's LN table shows.
//
//   model: {norm: layer}
#include "layers/norm_kernels.h"
#include "layers/registry.h"

namespace runner {
namespace {

NormDef layer_norm_def() {
  return NormDef{"layer", "GroupNorm", [](int64_t channels, int64_t) { return 2 * channels; },
                 [](int64_t, int64_t) { return std::string{}; }};
}

torch::nn::AnyModule make_layer_norm(int64_t channels, int64_t) { return torch::nn::AnyModule(GroupNorm(1, channels)); }

}  // namespace
RUNNER_REGISTER_NORM(layer_norm_def, make_layer_norm);
}  // namespace runner
