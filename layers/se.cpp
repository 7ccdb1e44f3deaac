// se: squeeze-and-excitation (Hu et al. 2018). Each channel is scaled by a gate
// in (0, 1) computed from the whole map: global average pool, a 1x1 conv down
// to C/reduction channels, ReLU, a 1x1 conv back to C, sigmoid. The shape stays.
//
//   - se: {reduction: 4}
//   - se: 8                         # shorthand: the reduction
//
// reduction 4 (C/reduction rounded down, at least 1 channel). Summary row:
// SqueezeExcite with both convolutions' weights and biases, C·r + r + r·C + C for
// r = max(1, C / reduction).
#include "layers/layer_util.h"
#include "layers/registry.h"

namespace runner {
namespace {

int64_t squeezed(int64_t channels, int64_t reduction) { return std::max<int64_t>(1, channels / reduction); }

class SqueezeExciteImpl : public torch::nn::Module {
 public:
  SqueezeExciteImpl(int64_t channels, int64_t hidden)
      : squeeze_(register_module("squeeze", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, hidden, 1)))),
        excite_(register_module("excite", torch::nn::Conv2d(torch::nn::Conv2dOptions(hidden, channels, 1)))) {}
  torch::Tensor forward(const torch::Tensor& x) {
    const torch::Tensor pooled = x.mean({2, 3}, /*keepdim=*/true);
    return x * torch::sigmoid(excite_->forward(torch::relu(squeeze_->forward(pooled))));
  }

 private:
  torch::nn::Conv2d squeeze_, excite_;
};
TORCH_MODULE(SqueezeExcite);

LayerDef se_def() {
  return LayerDef{
      "se",
      "squeeze-and-excitation: channels scaled by gates from the pooled map",
      {{"reduction", OptionKind::Int, int64_t{4}, Range::Positive, {}, false, "channels / reduction in the middle"}},
      "reduction",
      [](const LayerSpec& spec, const Shape& in, Planner& planner) {
        require_feature_map(in, "se");
        const int64_t c = in[0], r = squeezed(c, spec.get_int("reduction"));
        planner.add_row("SqueezeExcite", in, c * r + r + r * c + c);
        return in;
      },
  };
}

torch::nn::AnyModule make_se(const LayerSpec& spec, const Shape& in, ModuleBuilder&) {
  return torch::nn::AnyModule(SqueezeExcite(in[0], squeezed(in[0], spec.get_int("reduction"))));
}

}  // namespace
RUNNER_REGISTER_LAYER(se_def, make_se);
}  // namespace runner
