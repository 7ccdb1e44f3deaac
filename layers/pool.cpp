// maxpool / avgpool: a square pooling window.
//
//   - maxpool: 2                               # shorthand for kernel
//   - avgpool: {kernel: 3, stride: 2, padding: 1}
//
// kernel 2, stride (0 = kernel), padding 0 (at most kernel / 2).
// Summary rows: MaxPool2d, AvgPool2d.
#include "layers/layer_util.h"
#include "layers/registry.h"

namespace runner {
namespace {

int64_t stride_of(const LayerSpec& spec) {
  const int64_t stride = spec.get_int("stride");
  return stride == 0 ? spec.get_int("kernel") : stride;
}

LayerDef pool_def(const std::string& name, const std::string& row) {
  return LayerDef{
      name,
      row + " over a square window",
      {
          {"kernel", OptionKind::Int, int64_t{2}, Range::Positive, {}, false, "window size"},
          {"stride", OptionKind::Int, int64_t{0}, Range::NonNegative, {}, false, "0 = kernel"},
          {"padding", OptionKind::Int, int64_t{0}, Range::NonNegative, {}, false, "at most kernel / 2"},
      },
      "kernel",
      [name, row](const LayerSpec& spec, const Shape& in, Planner& planner) {
        require_feature_map(in, name);
        const int64_t kernel = spec.get_int("kernel"), padding = spec.get_int("padding");
        if (padding * 2 > kernel)
          throw PlanError("padding " + std::to_string(padding) + " must be at most half the kernel (" +
                          std::to_string(kernel) + ")");
        const Shape shape = spatial_out(in, in[0], kernel, stride_of(spec), padding);
        planner.add_row(row, shape, 0);
        return shape;
      },
  };
}

LayerDef maxpool_def() { return pool_def("maxpool", "MaxPool2d"); }
LayerDef avgpool_def() { return pool_def("avgpool", "AvgPool2d"); }

torch::nn::AnyModule make_maxpool(const LayerSpec& spec, const Shape&, ModuleBuilder&) {
  return torch::nn::AnyModule(torch::nn::MaxPool2d(
      torch::nn::MaxPool2dOptions(spec.get_int("kernel")).stride(stride_of(spec)).padding(spec.get_int("padding"))));
}

torch::nn::AnyModule make_avgpool(const LayerSpec& spec, const Shape&, ModuleBuilder&) {
  return torch::nn::AnyModule(torch::nn::AvgPool2d(
      torch::nn::AvgPool2dOptions(spec.get_int("kernel")).stride(stride_of(spec)).padding(spec.get_int("padding"))));
}

}  // namespace
RUNNER_REGISTER_LAYER(maxpool_def, make_maxpool);
RUNNER_REGISTER_LAYER(avgpool_def, make_avgpool);
}  // namespace runner
