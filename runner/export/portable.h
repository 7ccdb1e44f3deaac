// Stage "export", step 1: the trained network as plain, framework-neutral modules
// in eval mode (what an ONNX graph and a torch.nn.Module both say). Folding
// happens here, once for both writers: weight standardization into plain conv
// weights, whiten into a fixed Conv2d, every norm into BatchNorm2d (running
// statistics) or GroupNorm. Each module is named like its summary-table row
// (conv2d_1, relu_2, ...), so the exported names match `runner check`.
#pragma once
#include <torch/torch.h>

#include <array>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "runner/config/spec.h"
#include "runner/model/builder.h"

namespace runner {

struct PortableModule {
  /// Conv2d, BatchNorm2d, GroupNorm, ReLU, LeakyReLU, ELU, GELU, SiLU, Tanh, MaxPool2d,
  /// AvgPool2d, Dropout, Linear (flattens its input first), Residual, Concat, SqueezeExcite.
  std::string kind;
  std::string name;  ///< "conv2d_1": the summary row's type and number; containers take their first row's
  std::map<std::string, int64_t> ints;  ///< in, out, kernel_h, kernel_w, stride, padding, dilation, groups, ...
  std::map<std::string, double> reals;  ///< eps, slope, alpha, p
  std::vector<std::pair<std::string, torch::Tensor>> tensors;  ///< float32, contiguous, CPU: "weight", "bias", ...
  /// Residual: {body} or {body, {projection}}; Concat: one stack per branch; SqueezeExcite: {{squeeze, excite}}.
  std::vector<std::vector<PortableModule>> stacks;
  Shape in, out;  ///< per-sample shapes

  /// The tensor named `key_name`, or nullptr (a conv without bias).
  const torch::Tensor* tensor(const std::string& key_name) const {
    for (const auto& [key, t] : tensors)
      if (key == key_name) return &t;
    return nullptr;
  }
};

struct PortableNet {
  std::vector<PortableModule> layers;
  Shape input;
  int64_t classes = 0;
  std::array<double, 3> mean{}, std{};  ///< data.normalize: input = (pixel / 255 - mean) / std
};

/// Lowers a built, trained network (load_eval_weights) and its spec. std::logic_error
/// for a layer type without a lowering (tests/test_export.cpp checks every registered one has one).
PortableNet lower_network(const ExperimentSpec& spec, Net& net);

/// What Python's torch.load reads as a state dict {name: tensor}, also with weights_only (PyTorch 2.6+).
std::string pickle_state_dict(const std::vector<std::pair<std::string, torch::Tensor>>& entries);

/// The layer types and norms lower_network knows.
std::vector<std::string> lowered_layer_types();
std::vector<std::string> lowered_norm_types();

}  // namespace runner
