// The torch-free half of the layer contract: what a layer type accepts in YAML
// (its schema) and what it does to the shape and the parameter count (its plan).
// The config stage reads only this half; the builder adds the LibTorch half
// (layers/registry.h). Shape inference and weight counting stay separate from
// module construction, so the builder can cross-check one against the other.
//
// Contract for a layer type T registered under name N:
//   requires: spec.type == N, spec.options holds every option of T's schema
//             (defaults filled and range-checked by the config stage)
//   plan:     given the input shape, adds one summary row per module that will
//             run (in execution order) and returns the output shape; throws
//             PlanError with a plain sentence when the input does not fit, or
//             calls Planner::problem when the output shape is still known.
//   ensures:  the built module's numel() equals the rows' params, its trainable
//             numel() the rows' params less their frozen ones, and a
//             forward pass yields exactly the planned output shape.
#pragma once
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "runner/config/spec.h"

namespace runner {

/// Per-sample shape: [C, H, W] for feature maps, [F] after a linear layer.
using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& shape);  ///< "[-1, 16, 30, 30]" as in the seed tables

enum class OptionKind { Int, Double, Bool, String, Block, Layers };
enum class Range { Any, Positive, NonNegative, Probability };
/// Where a string option's allowed values come from: its own list, or the
/// registry's names, so that a new norm or activation file is valid at once.
enum class Names { Listed, Norms, Activations };

/// One YAML key a layer type accepts.
struct OptionDef {
  std::string name;
  OptionKind kind = OptionKind::Int;
  OptionValue default_value = int64_t{0};
  Range range = Range::Any;
  std::vector<std::string> choices;  ///< allowed strings; empty = any
  bool required = false;
  std::string doc;
  Names names = Names::Listed;  ///< Norms / Activations: `choices` come from the registry
  /// A `model` key whose value is this option's default (conv's `standardize`:
  /// "standardize"); the option's own key, where given, overrides it.
  std::string model_default = {};
  /// false for a key added after configs were hashed: left out of the config
  /// hash while it holds its default (the model's, with `model_default`), so
  /// configs written before it keep their hash.
  bool hashed_at_default = true;

  // The three above, chained after the braces, so that a table row stays one row:
  //   OptionDef{"norm", OptionKind::String, ...}.choices_of(Names::Norms)
  OptionDef choices_of(Names registry) const {
    OptionDef o = *this;
    o.names = registry;
    return o;
  }
  OptionDef default_from_model(const std::string& key) const {
    OptionDef o = *this;
    o.model_default = key;
    return o;
  }
  OptionDef unhashed_at_default() const {
    OptionDef o = *this;
    o.hashed_at_default = false;
    return o;
  }
};

/// The strings `option` accepts (empty = any).
std::vector<std::string> option_choices(const OptionDef& option);

/// A shape does not fit a layer; the planner adds which layers and where.
class PlanError : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// One row of the summary table.
struct SummaryRow {
  std::string type_name;  ///< "Conv2d", "BatchNorm2d", …
  Shape output;
  int64_t params = 0;      ///< all of them, frozen ones included (the budget counts every parameter)
  int64_t frozen = 0;      ///< of `params`, those never trained (a whitening layer's filters)
  std::string layer_path;  ///< the YAML layer it came from
};

/// Collects rows while the shape walks through the stack.
class Planner {
 public:
  virtual ~Planner() = default;
  /// `frozen`: how many of `params` are not trained (the module registers them without grad).
  virtual void add_row(const std::string& type_name, const Shape& out, int64_t params, int64_t frozen = 0) = 0;
  /// Reports a problem that leaves the output shape known, so the walk goes on
  /// and later problems are reported too (e.g. groups that do not divide).
  virtual void problem(const std::string& message) = 0;
  /// Walks a nested stack (a residual's body); throws ConfigError on misfit.
  virtual Shape walk(const std::vector<LayerSpec>& layers, const Shape& in) = 0;
};

/// What else a layer type is, beyond a layer one can write in `model.layers`.
enum class LayerRole {
  Layer,
  Activation,  ///< also a step of `model.block` and a conv's `block`
};

struct LayerDef {
  std::string name;
  std::string summary;  ///< one line for `runner layers`
  std::vector<OptionDef> options;
  std::string shorthand;  ///< option set by `- name: value` (scalar or list form)
  std::function<Shape(const LayerSpec&, const Shape& in, Planner&)> plan;
  LayerRole role = LayerRole::Layer;
  /// Only the model's first layer (whiten: its filters come from the images); the
  /// sentence says why, for the error.
  std::string first_only = {};
};

/// The norm a `norm` layer delegates to (batch, layer, group, none).
struct NormDef {
  std::string name;
  std::string row_name;  ///< module name in the summary, e.g. "BatchNorm2d"
  /// Trainable parameters for C channels.
  std::function<int64_t(int64_t channels, int64_t groups)> params;
  /// Empty when the combination is valid, else why not.
  std::function<std::string(int64_t channels, int64_t groups)> check;
};

/// Called by register_layer / register_norm (layers/registry.h), which also keep
/// the module maker; throw std::logic_error for a name registered twice.
void register_layer_def(LayerDef def);
void register_norm_def(NormDef def);

const LayerDef* find_layer_def(const std::string& name);
const NormDef* find_norm_def(const std::string& name);
std::vector<std::string> layer_names();
std::vector<std::string> norm_names();
std::vector<std::string> activation_names();  ///< layer types with LayerRole::Activation

}  // namespace runner
