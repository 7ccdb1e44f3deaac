// Activations, usually placed by a conv's block rather than written out
// (LayerRole::Activation makes a type a valid step of `model.block`).
//
//   - relu
//   - leaky_relu: {slope: 0.1}      # slope 0.01
//   - elu: {alpha: 1.0}             # alpha 1.0
//   - gelu / silu / tanh
//
// Summary rows: ReLU, LeakyReLU, ELU, GELU, SiLU, Tanh. Shape unchanged.
#include "layers/registry.h"

namespace runner {
namespace {

LayerDef activation_def(const std::string& name, const std::string& row, std::vector<OptionDef> options = {},
                        const std::string& shorthand = "") {
  return LayerDef{name,
                  row + " activation",
                  std::move(options),
                  shorthand,
                  [row](const LayerSpec&, const Shape& in, Planner& planner) {
                    planner.add_row(row, in, 0);
                    return in;
                  },
                  LayerRole::Activation};
}

LayerDef relu_def() { return activation_def("relu", "ReLU"); }
LayerDef gelu_def() { return activation_def("gelu", "GELU"); }
LayerDef silu_def() { return activation_def("silu", "SiLU"); }
LayerDef tanh_def() { return activation_def("tanh", "Tanh"); }
LayerDef leaky_relu_def() {
  return activation_def("leaky_relu", "LeakyReLU",
                        {{"slope", OptionKind::Double, 0.01, Range::NonNegative, {}, false, "negative slope"}},
                        "slope");
}
LayerDef elu_def() {
  return activation_def("elu", "ELU", {{"alpha", OptionKind::Double, 1.0, Range::Positive, {}, false, ""}}, "alpha");
}

using torch::nn::AnyModule;
AnyModule make_relu(const LayerSpec&, const Shape&, ModuleBuilder&) { return AnyModule(torch::nn::ReLU()); }
AnyModule make_gelu(const LayerSpec&, const Shape&, ModuleBuilder&) { return AnyModule(torch::nn::GELU()); }
AnyModule make_silu(const LayerSpec&, const Shape&, ModuleBuilder&) { return AnyModule(torch::nn::SiLU()); }
AnyModule make_tanh(const LayerSpec&, const Shape&, ModuleBuilder&) { return AnyModule(torch::nn::Tanh()); }
AnyModule make_leaky_relu(const LayerSpec& spec, const Shape&, ModuleBuilder&) {
  return AnyModule(torch::nn::LeakyReLU(torch::nn::LeakyReLUOptions().negative_slope(spec.get_double("slope"))));
}
AnyModule make_elu(const LayerSpec& spec, const Shape&, ModuleBuilder&) {
  return AnyModule(torch::nn::ELU(torch::nn::ELUOptions().alpha(spec.get_double("alpha"))));
}

}  // namespace
RUNNER_REGISTER_LAYER(relu_def, make_relu);
RUNNER_REGISTER_LAYER(gelu_def, make_gelu);
RUNNER_REGISTER_LAYER(silu_def, make_silu);
RUNNER_REGISTER_LAYER(tanh_def, make_tanh);
RUNNER_REGISTER_LAYER(leaky_relu_def, make_leaky_relu);
RUNNER_REGISTER_LAYER(elu_def, make_elu);
}  // namespace runner
