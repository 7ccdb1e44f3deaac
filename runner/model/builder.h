// Stage 2b: checked specs → a LibTorch module through the layer registry. The
// plan (shapes, rows, parameter count) comes first; the built module must agree
// with it exactly, or the build fails as an internal error.
#pragma once
#include <torch/torch.h>

#include "runner/config/plan.h"

namespace runner {

/// The network: the layer stack, then [N, classes, 1, 1] flattened to logits.
class NetImpl : public torch::nn::Module {
 public:
  explicit NetImpl(torch::nn::Sequential layers);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Sequential& layers() { return layers_; }

 private:
  torch::nn::Sequential layers_;
};
TORCH_MODULE(Net);

struct BuiltModel {
  Net net{nullptr};
  ModelPlan plan;
};

/// Plans and builds; throws ConfigError for misfits and std::logic_error if the
/// module's parameters disagree with the plan (a bug in a layer file).
BuiltModel build_model(const ModelSpec& model);

/// The shape `layer` turns `in` into: its plan replayed without rows (the plan already accepted it).
Shape layer_output_shape(const LayerSpec& layer, const Shape& in);

/// Sum of numel() over parameters that require grad.
int64_t count_trainable_params(const torch::nn::Module& module);

}  // namespace runner
