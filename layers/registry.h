// The LibTorch half of the layer contract and the registration macros.
// Adding a layer: write layers/<name>.cpp with a LayerDef (schema + plan) and a
// make function, then one line at its bottom:
//     RUNNER_REGISTER_LAYER(conv_def, make_conv);
// Adding a norm: layers/norm_<name>.cpp with a NormDef and a make function, then
//     RUNNER_REGISTER_NORM(batch_norm_def, make_batch_norm);
// Registering a name twice throws std::logic_error at start-up.
#pragma once
#include <ATen/record_function.h>
#include <torch/torch.h>

#include "layers/layer_def.h"

namespace runner {

class ModuleBuilder {
 public:
  virtual ~ModuleBuilder() = default;
  /// Builds a nested stack (a residual's body) into a Sequential; sets `out`
  /// to the stack's planned output shape.
  virtual torch::nn::Sequential build_stack(const std::vector<LayerSpec>& layers, const Shape& in, Shape& out) = 0;
};

/// Builds the module for a checked spec; `in` is the planned input shape.
using MakeLayerFn = std::function<torch::nn::AnyModule(const LayerSpec&, const Shape& in, ModuleBuilder&)>;
using MakeNormFn = std::function<torch::nn::AnyModule(int64_t channels, int64_t groups)>;

bool register_layer(LayerDef def, MakeLayerFn make);
bool register_norm(NormDef def, MakeNormFn make);
const MakeLayerFn& find_layer_make(const std::string& name);
const MakeNormFn& find_norm_make(const std::string& name);

/// "layer: Conv2d" for torch::nn::Conv2dImpl, "layer: Residual" for runner's ResidualImpl.
inline std::string layer_scope_name(const torch::nn::Module& module) {
  std::string name = module.name();
  const size_t colon = name.rfind(':');
  if (colon != std::string::npos) name = name.substr(colon + 1);
  if (name.size() > 4 && name.compare(name.size() - 4, 4, "Impl") == 0) name.resize(name.size() - 4);
  return "layer: " + name;
}

/// A layer whose weights are computed from the training data before training
/// (whiten). `first_images(n)` gives the first n training images (0 = all),
/// normalized and not augmented, on the module's device.
class InitFromData {
 public:
  virtual ~InitFromData() = default;
  virtual void init_from_data(const std::function<torch::Tensor(int64_t)>& first_images) = 0;
};

/// A layer that changes what it trains as epochs pass (whiten's short-lived bias).
/// Called before each epoch, 0-based, also for the epoch a resumed run starts in.
class EpochAware {
 public:
  virtual ~EpochAware() = default;
  virtual void start_epoch(int64_t epoch) = 0;
};

/// A layer that can apply the ReLU in front of it itself, in the same passes
/// over memory: where fuses_relu(x), forward_after_relu(x) == forward(relu(x)).
class FusesPrecedingRelu {
 public:
  virtual ~FusesPrecedingRelu() = default;
  virtual bool fuses_relu(const torch::Tensor& x) const = 0;
  virtual torch::Tensor forward_after_relu(const torch::Tensor& x) = 0;
};

/// Runs a stack built by build_stack layer by layer, each in a profiler scope
/// named "layer: Conv2d" etc. (runner bench --profile); the name is only made
/// while a profiler listens. A ReLU followed by a FusesPrecedingRelu layer (the
/// conv → relu → norm block) runs as one step, in the norm's scope.
inline torch::Tensor forward_layers(torch::nn::Sequential& stack, torch::Tensor x) {
  for (auto layer = stack->begin(); layer != stack->end(); ++layer) {
    const auto next = std::next(layer);
    if (next != stack->end() && dynamic_cast<torch::nn::ReLUImpl*>(layer->ptr().get()) != nullptr) {
      auto* fused = dynamic_cast<FusesPrecedingRelu*>(next->ptr().get());
      if (fused != nullptr && fused->fuses_relu(x)) {
        RECORD_USER_SCOPE(layer_scope_name(*next->ptr()));
        x = fused->forward_after_relu(x);
        layer = next;
        continue;
      }
    }
    RECORD_USER_SCOPE(layer_scope_name(*layer->ptr()));
    x = layer->forward(x);
  }
  return x;
}

}  // namespace runner

#define RUNNER_REGISTER_LAYER(def_fn, make_fn) \
  static const bool kRegistered_##make_fn = ::runner::register_layer(def_fn(), make_fn)
#define RUNNER_REGISTER_NORM(def_fn, make_fn) \
  static const bool kRegistered_##make_fn = ::runner::register_norm(def_fn(), make_fn)
