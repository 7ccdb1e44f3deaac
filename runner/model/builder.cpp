#include "runner/model/builder.h"

#include "layers/registry.h"

namespace runner {

NetImpl::NetImpl(torch::nn::Sequential layers) : layers_(register_module("layers", std::move(layers))) {}

torch::Tensor NetImpl::forward(const torch::Tensor& x) { return forward_layers(layers_, x).flatten(1); }

namespace {

/// Replays plans for shapes only.
struct NullPlanner : Planner {
  void add_row(const std::string&, const Shape&, int64_t, int64_t) override {}
  void problem(const std::string&) override {}
  Shape walk(const std::vector<LayerSpec>& layers, const Shape& in) override {
    Shape shape = in;
    for (const auto& layer : layers) shape = find_layer_def(layer.type)->plan(layer, shape, *this);
    return shape;
  }
};

class StackBuilder : public ModuleBuilder {
 public:
  torch::nn::Sequential build_stack(const std::vector<LayerSpec>& layers, const Shape& in, Shape& out) override {
    torch::nn::Sequential seq;
    out = in;
    for (const auto& layer : layers) {
      torch::nn::AnyModule module = find_layer_make(layer.type)(layer, out, *this);
      out = layer_output_shape(layer, out);
      seq->push_back(std::move(module));
    }
    return seq;
  }
};

}  // namespace

Shape layer_output_shape(const LayerSpec& layer, const Shape& in) {
  NullPlanner planner;
  return find_layer_def(layer.type)->plan(layer, in, planner);
}

int64_t count_trainable_params(const torch::nn::Module& module) {
  int64_t total = 0;
  for (const auto& p : module.parameters())
    if (p.requires_grad()) total += p.numel();
  return total;
}

BuiltModel build_model(const ModelSpec& model) {
  BuiltModel built;
  built.plan = plan_model(model);
  StackBuilder builder;
  Shape out;
  built.net = Net(builder.build_stack(model.layers, built.plan.input, out));
  const int64_t trainable = count_trainable_params(*built.net);
  int64_t all = 0;
  for (const auto& p : built.net->parameters()) all += p.numel();
  if (all != built.plan.total_params || trainable != built.plan.total_params - built.plan.frozen_params ||
      out != built.plan.output)
    throw std::logic_error("the built module has " + std::to_string(all) + " parameters (" + std::to_string(trainable) +
                           " trainable) and output " + shape_str(out) + " but the plan says " +
                           std::to_string(built.plan.total_params) + " (" +
                           std::to_string(built.plan.total_params - built.plan.frozen_params) + ") and " +
                           shape_str(built.plan.output) + " (a layer's plan and make disagree)");
  return built;
}

}  // namespace runner
