#include "runner/config/plan.h"

#include <algorithm>

#include "runner/base/text.h"

namespace runner {

int64_t LayerSpec::get_int(const std::string& key) const { return std::get<int64_t>(options.at(key)); }
double LayerSpec::get_double(const std::string& key) const { return std::get<double>(options.at(key)); }
bool LayerSpec::get_bool(const std::string& key) const { return std::get<bool>(options.at(key)); }
const std::string& LayerSpec::get_string(const std::string& key) const {
  return std::get<std::string>(options.at(key));
}

namespace {

class ShapeWalker : public Planner {
 public:
  explicit ShapeWalker(ModelPlan& plan) : plan_(plan) {}

  void add_row(const std::string& type_name, const Shape& out, int64_t params, int64_t frozen) override {
    plan_.rows.push_back(SummaryRow{type_name, out, params, frozen, current_->path});
    plan_.total_params += params;
    plan_.frozen_params += frozen;
  }

  void problem(const std::string& message) override { diags_.push_back(diagnostic(*current_, message)); }

  Shape walk(const std::vector<LayerSpec>& layers, const Shape& in) override {
    Shape shape = in;
    for (const auto& layer : layers) {
      const LayerSpec* outer = current_;
      const LayerSpec* before = previous_;
      const Shape before_shape = previous_shape_;
      current_ = &layer;
      try {
        shape = find_layer_def(layer.type)->plan(layer, shape, *this);
      } catch (const PlanError& e) {
        // A container's own error (concat, residual) follows the layer before the container,
        // not the last layer walked inside it.
        previous_ = before, previous_shape_ = before_shape;
        diags_.push_back(diagnostic(layer, e.what()));
        throw ConfigError(diags_);
      }
      previous_ = &layer;
      previous_shape_ = shape;
      current_ = outer;
    }
    return shape;
  }

  /// Problems that did not stop the walk.
  const std::vector<Diagnostic>& diagnostics() const { return diags_; }

 private:
  /// Names the layer and the one before it, with its output shape.
  Diagnostic diagnostic(const LayerSpec& layer, const std::string& message) const {
    const bool from_block =
        layer.path.size() < layer.type.size() + 1 ||
        layer.path.compare(layer.path.size() - layer.type.size() - 1, std::string::npos, "." + layer.type) != 0;
    return Diagnostic{layer.loc, layer.path,
                      (from_block ? "its block's " + layer.type + ": " : "") + message + previous_layer() +
                          (layer.via.empty() ? "" : "; " + layer.via)};
  }

  std::string previous_layer() const {
    if (previous_ == nullptr) return " (it is the first layer; model.input is " + shape_str(plan_.input) + ")";
    return " (after " + previous_->path + " at line " + std::to_string(previous_->loc.line) + ", whose output is " +
           shape_str(previous_shape_) + ")";
  }

  ModelPlan& plan_;
  const LayerSpec* current_ = nullptr;
  std::vector<Diagnostic> diags_;
  const LayerSpec* previous_ = nullptr;
  Shape previous_shape_;
};

}  // namespace

ModelPlan plan_model(const ModelSpec& model) {
  ModelPlan plan;
  plan.input = Shape(model.input.begin(), model.input.end());
  ShapeWalker walker(plan);
  plan.output = walker.walk(model.layers, plan.input);
  if (!walker.diagnostics().empty()) throw ConfigError(walker.diagnostics());
  const bool logits = plan.output == Shape{model.classes} || plan.output == Shape{model.classes, 1, 1};
  if (!logits) {
    const LayerSpec& last = model.layers.back();
    throw ConfigError({Diagnostic{
        last.loc, "model.layers",
        "the model ends with " + shape_str(plan.output) + " but needs " + std::to_string(model.classes) +
            " class scores ([-1, " + std::to_string(model.classes) + ", 1, 1] or [-1, " +
            std::to_string(model.classes) + "]); end with e.g. gap and conv: {out: " + std::to_string(model.classes) +
            ", kernel: 1, block: false}"}});
  }
  return plan;
}

void check_param_budget(const ModelPlan& plan, const BudgetSpec& budget) {
  if (plan.total_params < budget.max_params) return;
  std::vector<size_t> order(plan.rows.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return plan.rows[a].params > plan.rows[b].params; });
  std::string top;
  for (size_t i = 0; i < std::min<size_t>(3, order.size()); ++i) {
    const SummaryRow& row = plan.rows[order[i]];
    top += "\n  " + row.type_name + "-" + std::to_string(order[i] + 1) + " (" + row.layer_path +
           "): " + format_thousands(row.params);
  }
  const std::string counted = plan.frozen_params > 0 ? " parameters (" + format_thousands(plan.frozen_params) +
                                                           " of them frozen, which count too)"
                                                     : " trainable parameters";
  throw BudgetError("the model has " + format_thousands(plan.total_params) + counted +
                    "; the budget needs fewer than " + format_thousands(budget.max_params) +
                    " (budget.max_params). Largest layers:" + top);
}

}  // namespace runner
