// conv: a 2-D convolution, expanded by the config stage into `model.block`
// (default conv → relu → norm) unless it says `block: false`.
//
//   - conv: {out: 32, kernel: 3, padding: 1, stride: 1, dilation: 1, groups: 1, bias: false, norm: group}
//   - conv: {out: 16, kernel: 1, block: false}        # just the convolution
//   - conv: {out: 32, padding: 1, standardize: true}  # weight standardization
//   - conv: {out: 32, padding: 1, init: dirac}        # starts as the identity on the inputs
//
// out (required), kernel 3, padding 0, stride 1, dilation 1, groups 1 (grouped
// convolution: must divide in and out channels), bias false, norm (the norm of
// this block; default model.norm), block (true = model.block, false, or a list
// such as [conv, norm, relu]), standardize false (weight standardization, Qiao
// et al. 2019: each output channel's weights are shifted to mean 0 and scaled
// to variance 1 before every use; same parameters, meant to help GroupNorm and
// LayerNorm, whose statistics do not smooth the loss the way BatchNorm's do),
// init default (LibTorch's) or dirac (airbench: the first min(in, out) filters
// pass input channel i to output i through the kernel's centre, the others keep
// the default; a deep stack then starts close to the identity; groups 1 only).
// Summary row: Conv2d.
#include "layers/layer_util.h"
#include "layers/registry.h"
#include "layers/standardized_conv.h"

namespace runner {

StandardizedConv2dImpl::StandardizedConv2dImpl(const torch::nn::Conv2dOptions& options, int64_t stride, int64_t padding,
                                               int64_t dilation, int64_t groups)
    : stride_(stride), padding_(padding), dilation_(dilation), groups_(groups) {
  // Conv2d's own initialisation, so `standardize` changes nothing but the forward pass.
  torch::nn::Conv2d init(options);
  weight = register_parameter("weight", init->weight.detach().clone());
  if (options.bias()) bias = register_parameter("bias", init->bias.detach().clone());
}

torch::Tensor StandardizedConv2dImpl::forward(const torch::Tensor& x) {
  return torch::conv2d(x, standardized_weight(), bias, {stride_, stride_}, {padding_, padding_}, {dilation_, dilation_},
                       groups_);
}

torch::Tensor StandardizedConv2dImpl::standardized_weight() const {
  const auto var_mean = torch::var_mean(weight, {1, 2, 3}, /*unbiased=*/false, /*keepdim=*/true);
  return (weight - std::get<1>(var_mean)) * torch::rsqrt(std::get<0>(var_mean) + 1e-5);
}

namespace {

LayerDef conv_def() {
  return LayerDef{
      "conv",
      "2-D convolution (expands to model.block unless block: false)",
      // One row per option: clang-format would split a row holding a list one field per line.
      // clang-format off
      {
          {"out", OptionKind::Int, int64_t{0}, Range::Positive, {}, true, "output channels"},
          {"kernel", OptionKind::Int, int64_t{3}, Range::Positive, {}, false, "square kernel size"},
          {"padding", OptionKind::Int, int64_t{0}, Range::NonNegative, {}, false, "zero padding per side"},
          {"stride", OptionKind::Int, int64_t{1}, Range::Positive, {}, false, ""},
          {"dilation", OptionKind::Int, int64_t{1}, Range::Positive, {}, false, ""},
          {"groups", OptionKind::Int, int64_t{1}, Range::Positive, {}, false, "grouped convolution"},
          {"bias", OptionKind::Bool, false, Range::Any, {}, false, ""},
          OptionDef{"norm", OptionKind::String, std::string{}, Range::Any, {}, false, "default model.norm"}
              .choices_of(Names::Norms),
          {"block", OptionKind::Block, true, Range::Any, {}, false, "true, false or a list like [conv, norm, relu]"},
          // standardize and init came after configs were hashed: out of the hash at their defaults.
          OptionDef{"standardize", OptionKind::Bool, false, Range::Any, {}, false, "weight standardization"}
              .default_from_model("standardize")
              .unhashed_at_default(),
          OptionDef{"init", OptionKind::String, std::string{"default"}, Range::Any, {"default", "dirac"}, false,
                    "dirac: the first filters start as the identity"}
              .unhashed_at_default(),
      },
      // clang-format on
      "",
      [](const LayerSpec& spec, const Shape& in, Planner& planner) {
        require_feature_map(in, "conv");
        const int64_t out = spec.get_int("out"), groups = spec.get_int("groups"), k = spec.get_int("kernel");
        if (in[0] % groups != 0 || out % groups != 0)
          planner.problem("groups " + std::to_string(groups) + " must divide both the input channels (" +
                          std::to_string(in[0]) + ") and out (" + std::to_string(out) + ")");
        const Shape shape =
            spatial_out(in, out, k, spec.get_int("stride"), spec.get_int("padding"), spec.get_int("dilation"));
        if (spec.get_string("init") == "dirac" && groups != 1) planner.problem("init: dirac needs groups: 1");
        const int64_t params = out * (in[0] / groups) * k * k + (spec.get_bool("bias") ? out : 0);
        planner.add_row("Conv2d", shape, params);
        return shape;
      },
  };
}

torch::nn::Conv2dOptions conv_options(const LayerSpec& spec, const Shape& in) {
  return torch::nn::Conv2dOptions(in[0], spec.get_int("out"), spec.get_int("kernel"))
      .stride(spec.get_int("stride"))
      .padding(spec.get_int("padding"))
      .dilation(spec.get_int("dilation"))
      .groups(spec.get_int("groups"))
      .bias(spec.get_bool("bias"));
}

/// Filter i < min(in, out) becomes a 1 at input channel i, the kernel's centre; its bias 0.
void dirac_init(torch::Tensor& weight, torch::Tensor& bias) {
  torch::NoGradGuard no_grad;
  const int64_t m = std::min(weight.size(0), weight.size(1)), ch = weight.size(2) / 2, cw = weight.size(3) / 2;
  weight.narrow(0, 0, m).zero_();
  for (int64_t i = 0; i < m; ++i) weight[i][i][ch][cw] = 1.0;
  if (bias.defined()) bias.narrow(0, 0, m).zero_();
}

torch::nn::AnyModule make_conv(const LayerSpec& spec, const Shape& in, ModuleBuilder&) {
  const bool dirac = spec.get_string("init") == "dirac";
  if (spec.get_bool("standardize")) {
    StandardizedConv2d conv(conv_options(spec, in), spec.get_int("stride"), spec.get_int("padding"),
                            spec.get_int("dilation"), spec.get_int("groups"));
    if (dirac) dirac_init(conv->weight, conv->bias);
    return torch::nn::AnyModule(conv);
  }
  torch::nn::Conv2d conv(conv_options(spec, in));
  if (dirac) dirac_init(conv->weight, conv->bias);
  return torch::nn::AnyModule(conv);
}

}  // namespace
RUNNER_REGISTER_LAYER(conv_def, make_conv);
}  // namespace runner
