// norm: a normalization layer chosen from the norm registry (norm_*.cpp).
// Conv blocks place one automatically; write it out to put a norm elsewhere.
//
//   - norm                          # model.norm with model.groups
//   - norm: {type: group, groups: 8}
//
// type (default model.norm): any norm of the registry (batch | layer | group |
// none, and every norm_*.cpp added); groups (default model.groups, used by
// group). `none` adds no module and no summary row.
#include "layers/layer_util.h"
#include "layers/registry.h"

namespace runner {
namespace {

LayerDef norm_def() {
  return LayerDef{
      "norm",
      "normalization from the norm registry (`runner layers` lists them under norms)",
      {
          OptionDef{"type", OptionKind::String, std::string{}, Range::Any, {}, false, "default model.norm"}
              .choices_of(Names::Norms)
              .default_from_model("norm"),
          OptionDef{"groups", OptionKind::Int, int64_t{0}, Range::Positive, {}, false, "default model.groups"}
              .default_from_model("groups"),
      },
      "type",
      [](const LayerSpec& spec, const Shape& in, Planner& planner) {
        const NormDef* norm = find_norm_def(spec.get_string("type"));
        if (norm == nullptr) throw PlanError("unknown norm '" + spec.get_string("type") + "'");
        if (norm->row_name.empty()) return in;
        require_feature_map(in, "norm");
        const int64_t groups = spec.get_int("groups");
        const std::string problem = norm->check(in[0], groups);
        if (!problem.empty()) planner.problem(problem);
        planner.add_row(norm->row_name, in, norm->params(in[0], groups));
        return in;
      },
  };
}

torch::nn::AnyModule make_norm(const LayerSpec& spec, const Shape& in, ModuleBuilder&) {
  return find_norm_make(spec.get_string("type"))(in.empty() ? 0 : in[0], spec.get_int("groups"));
}

// `none` lives here rather than in its own file: it is the absence of a norm.
NormDef none_norm_def() {
  return NormDef{"none", "", [](int64_t, int64_t) { return int64_t{0}; },
                 [](int64_t, int64_t) { return std::string{}; }};
}

torch::nn::AnyModule make_none_norm(int64_t, int64_t) { return torch::nn::AnyModule(torch::nn::Identity()); }

}  // namespace
RUNNER_REGISTER_LAYER(norm_def, make_norm);
RUNNER_REGISTER_NORM(none_norm_def, make_none_norm);
}  // namespace runner
