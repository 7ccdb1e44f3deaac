// residual: y = body(x) + skip(x). The skip is the identity, so the body must
// keep the shape, or with `project: true` a 1x1 convolution (no bias, no norm,
// stride chosen to fit) that maps the input onto the body's output shape.
//
//   - residual:                     # list form: the body
//       - conv: {out: 32, kernel: 3, padding: 1}
//   - residual: {project: true, layers: [{conv: {out: 48, kernel: 3, padding: 1, stride: 2}}]}
//
// layers (required), project false. Summary rows: the body's rows, then Conv2d
// for the projection.
#include "layers/layer_util.h"
#include "layers/registry.h"

namespace runner {
namespace {

class ResidualImpl : public torch::nn::Module {
 public:
  ResidualImpl(torch::nn::Sequential body, torch::nn::Conv2d projection)
      : body_(register_module("body", std::move(body))) {
    if (!projection.is_empty()) projection_ = register_module("projection", std::move(projection));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor y = forward_layers(body_, x);
    return projection_.is_empty() ? y + x : y + projection_->forward(x);
  }

 private:
  torch::nn::Sequential body_;
  torch::nn::Conv2d projection_{nullptr};
};
TORCH_MODULE(Residual);

/// Stride of the 1x1 projection that maps `in` onto `out`, or 0 if none does.
int64_t projection_stride(const Shape& in, const Shape& out) {
  const int64_t stride = (in[1] + out[1] - 1) / out[1];
  return window_out(in[1], 1, stride, 0) == out[1] && window_out(in[2], 1, stride, 0) == out[2] ? stride : 0;
}

LayerDef residual_def() {
  return LayerDef{
      "residual",
      "skip connection around a nested stack",
      {
          {"layers", OptionKind::Layers, int64_t{0}, Range::Any, {}, true, "the body"},
          {"project", OptionKind::Bool, false, Range::Any, {}, false, "1x1 conv on the skip path"},
      },
      "layers",
      [](const LayerSpec& spec, const Shape& in, Planner& planner) {
        const Shape out = planner.walk(spec.children, in);
        if (!spec.get_bool("project")) {
          if (out != in)
            throw PlanError("residual body turns " + shape_str(in) + " into " + shape_str(out) +
                            "; the shapes must match for y = x + f(x) (or set project: true)");
          return out;
        }
        require_feature_map(in, "residual projection");
        if (out.size() != 3 || projection_stride(in, out) == 0)
          throw PlanError("residual projection cannot map " + shape_str(in) + " onto " + shape_str(out) +
                          " with a strided 1x1 convolution");
        planner.add_row("Conv2d", out, in[0] * out[0]);
        return out;
      },
  };
}

torch::nn::AnyModule make_residual(const LayerSpec& spec, const Shape& in, ModuleBuilder& builder) {
  Shape out;
  torch::nn::Sequential body = builder.build_stack(spec.children, in, out);
  torch::nn::Conv2d projection{nullptr};
  if (spec.get_bool("project")) {
    projection =
        torch::nn::Conv2d(torch::nn::Conv2dOptions(in[0], out[0], 1).stride(projection_stride(in, out)).bias(false));
  }
  return torch::nn::AnyModule(Residual(std::move(body), std::move(projection)));
}

}  // namespace
RUNNER_REGISTER_LAYER(residual_def, make_residual);
}  // namespace runner
