// norm: batch — BatchNorm2d: per-channel statistics over the batch, with a
// per-channel affine (2·C trainable parameters; running stats are buffers).
//
//   model: {norm: batch}
#include "layers/norm_kernels.h"
#include "layers/registry.h"

namespace runner {
namespace {

NormDef batch_norm_def() {
  return NormDef{"batch", "BatchNorm2d", [](int64_t channels, int64_t) { return 2 * channels; },
                 [](int64_t, int64_t) { return std::string{}; }};
}

torch::nn::AnyModule make_batch_norm(int64_t channels, int64_t) { return torch::nn::AnyModule(BatchNorm2d(channels)); }

}  // namespace
RUNNER_REGISTER_NORM(batch_norm_def, make_batch_norm);
}  // namespace runner
