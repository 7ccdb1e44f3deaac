// gap / gmp: global average / max pooling, a window over the whole map, so the
// summary shows AvgPool2d / MaxPool2d as the seed's table does.
//
//   - gap
//   - gmp
//
// No options. Output [C, 1, 1].
#include "layers/layer_util.h"
#include "layers/registry.h"

namespace runner {
namespace {

LayerDef global_pool_def(const std::string& name, const std::string& row) {
  return LayerDef{
      name,
      "global " + row + " (window = the whole map)",
      {},
      "",
      [name, row](const LayerSpec&, const Shape& in, Planner& planner) {
        require_feature_map(in, name);
        const Shape shape{in[0], 1, 1};
        planner.add_row(row, shape, 0);
        return shape;
      },
  };
}

LayerDef gap_def() { return global_pool_def("gap", "AvgPool2d"); }
LayerDef gmp_def() { return global_pool_def("gmp", "MaxPool2d"); }

torch::nn::AnyModule make_gap(const LayerSpec&, const Shape& in, ModuleBuilder&) {
  return torch::nn::AnyModule(torch::nn::AvgPool2d(torch::nn::AvgPool2dOptions({in[1], in[2]})));
}

torch::nn::AnyModule make_gmp(const LayerSpec&, const Shape& in, ModuleBuilder&) {
  return torch::nn::AnyModule(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions({in[1], in[2]})));
}

}  // namespace
RUNNER_REGISTER_LAYER(gap_def, make_gap);
RUNNER_REGISTER_LAYER(gmp_def, make_gmp);
}  // namespace runner
