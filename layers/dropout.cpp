// dropout: zeroes activations with probability p while training.
//
//   - dropout: 0.05                 # shorthand for p
//   - dropout: {p: 0.1}
//
// p 0.1, in [0, 1). Summary row: Dropout. Shape unchanged.
#include "layers/registry.h"

namespace runner {
namespace {

LayerDef dropout_def() {
  return LayerDef{"dropout",
                  "element-wise dropout",
                  {{"p", OptionKind::Double, 0.1, Range::Probability, {}, false, "drop probability"}},
                  "p",
                  [](const LayerSpec&, const Shape& in, Planner& planner) {
                    planner.add_row("Dropout", in, 0);
                    return in;
                  }};
}

torch::nn::AnyModule make_dropout(const LayerSpec& spec, const Shape&, ModuleBuilder&) {
  return torch::nn::AnyModule(torch::nn::Dropout(torch::nn::DropoutOptions(spec.get_double("p"))));
}

}  // namespace
RUNNER_REGISTER_LAYER(dropout_def, make_dropout);
}  // namespace runner
