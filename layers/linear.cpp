// linear: a fully connected layer; flattens a feature map first.
//
//   - linear: {out: 10, bias: true}
//   - linear: 10                       # shorthand for out
//
// out (required), bias true. Summary row: Linear.
#include "layers/layer_util.h"
#include "layers/registry.h"

namespace runner {
namespace {

class FlattenLinearImpl : public torch::nn::Module {
 public:
  explicit FlattenLinearImpl(torch::nn::LinearOptions options)
      : linear_(register_module("linear", torch::nn::Linear(options))) {}
  torch::Tensor forward(const torch::Tensor& x) { return linear_->forward(x.flatten(1)); }

 private:
  torch::nn::Linear linear_;
};
TORCH_MODULE(FlattenLinear);

LayerDef linear_def() {
  return LayerDef{
      "linear",
      "fully connected layer (flattens its input first)",
      {
          {"out", OptionKind::Int, int64_t{0}, Range::Positive, {}, true, "output features"},
          {"bias", OptionKind::Bool, true, Range::Any, {}, false, ""},
      },
      "out",
      [](const LayerSpec& spec, const Shape& in, Planner& planner) {
        const int64_t out = spec.get_int("out");
        const Shape shape{out};
        planner.add_row("Linear", shape, numel(in) * out + (spec.get_bool("bias") ? out : 0));
        return shape;
      },
  };
}

torch::nn::AnyModule make_linear(const LayerSpec& spec, const Shape& in, ModuleBuilder&) {
  return torch::nn::AnyModule(
      FlattenLinear(torch::nn::LinearOptions(numel(in), spec.get_int("out")).bias(spec.get_bool("bias"))));
}

}  // namespace
RUNNER_REGISTER_LAYER(linear_def, make_linear);
}  // namespace runner
