// A norm and an activation that only the test binary has, written as any new
// layer file would be: they prove that one file in layers/ is all a new norm or
// activation needs (issue 39), with no list elsewhere to extend.
//
//   model: {norm: test_scale, block: [conv, test_softsign, norm]}
//   - conv: {out: 8, norm: test_scale}
//   - norm: {type: test_scale}
//   - test_softsign
//
// test_scale: a learned per-channel scale (C parameters), summary row TestScale.
// test_softsign: x / (1 + |x|), summary row Softsign.
#include "layers/registry.h"

namespace runner {
namespace {

struct TestScaleImpl : torch::nn::Cloneable<TestScaleImpl> {
  explicit TestScaleImpl(int64_t channels) : channels_(channels) { reset(); }
  void reset() override { weight = register_parameter("weight", torch::ones({channels_})); }
  torch::Tensor forward(const torch::Tensor& x) { return x * weight.view({1, -1, 1, 1}); }
  int64_t channels_;
  torch::Tensor weight;
};
TORCH_MODULE(TestScale);

NormDef test_scale_def() {
  return NormDef{"test_scale", "TestScale", [](int64_t channels, int64_t) { return channels; },
                 [](int64_t, int64_t) { return std::string{}; }};
}

torch::nn::AnyModule make_test_scale(int64_t channels, int64_t) { return torch::nn::AnyModule(TestScale(channels)); }

LayerDef test_softsign_def() {
  return LayerDef{"test_softsign",
                  "Softsign activation (test binary only)",
                  {},
                  "",
                  [](const LayerSpec&, const Shape& in, Planner& planner) {
                    planner.add_row("Softsign", in, 0);
                    return in;
                  },
                  LayerRole::Activation};
}

torch::nn::AnyModule make_test_softsign(const LayerSpec&, const Shape&, ModuleBuilder&) {
  return torch::nn::AnyModule(torch::nn::Softsign());
}

}  // namespace
RUNNER_REGISTER_NORM(test_scale_def, make_test_scale);
RUNNER_REGISTER_LAYER(test_softsign_def, make_test_softsign);
}  // namespace runner
