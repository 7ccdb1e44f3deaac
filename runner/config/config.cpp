#include "runner/config/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <regex>
#include <sstream>

#include "runner/config/plan.h"
#include "runner/config/yaml_reader.h"

namespace runner {

namespace {

const std::string kDefaultRoot = "${CIFAR10_ROOT:-data/cifar-10-batches-bin}";

/// A --set argument split into its dotted path and YAML value.
struct Override {
  std::string arg, path, value;
};

std::vector<Override> parse_overrides(const std::vector<std::string>& sets) {
  std::vector<Override> out;
  std::vector<Diagnostic> diags;
  for (const auto& arg : sets) {
    const size_t eq = arg.find('=');
    if (eq == std::string::npos || eq == 0) {
      diags.push_back({SourceLoc{"--set " + arg, 0, 0}, "", "expected key.path=value, e.g. --set train.epochs=2"});
      continue;
    }
    out.push_back({arg, arg.substr(0, eq), arg.substr(eq + 1)});
  }
  if (!diags.empty()) throw ConfigError(diags);
  return out;
}

/// Writes one override into the YAML tree, creating maps on the way; a shorthand use it
/// expands into a map is recorded in `expanded` (path -> where the shorthand was written).
void apply_override(YAML::Node root, const Override& o, std::map<std::string, YAML::Mark>& expanded) {
  const SourceLoc loc{"--set " + o.arg, 0, 0};
  YAML::Node value;
  try {
    value = load_yaml(o.value, loc.file);
  } catch (const ConfigError& e) {  // invalid YAML, or a key given twice inside the value
    std::vector<Diagnostic> diags;
    for (const auto& d : e.diagnostics())
      diags.push_back(
          {loc, d.key.empty() ? o.path : o.path + "." + d.key, d.key.empty() ? "value is " + d.message : d.message});
    throw ConfigError(diags);
  }
  std::vector<std::string> parts;
  std::stringstream ss(o.path);
  for (std::string part; std::getline(ss, part, '.');) parts.push_back(part);
  YAML::Node cur = root;
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& part = parts[i];
    const bool last = i + 1 == parts.size();
    if (part.empty()) throw ConfigError({Diagnostic{loc, o.path, "empty segment in the key path"}});
    if (cur.IsSequence()) {
      if (!is_index(part) || std::stoul(part) >= cur.size())
        throw ConfigError({Diagnostic{loc, o.path,
                                      "'" + part + "' is not an index of that list (0.." +
                                          std::to_string(cur.size() == 0 ? 0 : cur.size() - 1) + ")"}});
      const size_t index = std::stoul(part);
      if (last) {
        cur[index] = value;
        return;
      }
      YAML::Node next = cur[index];
      cur.reset(next);
      continue;
    }
    if (!cur.IsMap() && !cur.IsNull() && cur.IsDefined())
      throw ConfigError({Diagnostic{loc, o.path, "'" + part + "' is below a single value, not a map"}});
    if (last) {
      // A fresh entry, not an assignment into the old value's node: a merge key's
      // map shares that node with its anchor, which must keep its own value.
      const YAML::Node& view = cur;
      if (view.IsMap() && view[part].IsDefined()) cur.remove(part);
      cur[part] = value;
      return;
    }
    if (!cur[part].IsDefined() || cur[part].IsNull()) {
      cur[part] = YAML::Node(YAML::NodeType::Map);
    } else if (const YAML::Node& view = cur; i > 0 && is_index(parts[i - 1]) && !view[part].IsMap() &&
                                             !(view[part].IsSequence() && is_index(parts[i + 1]))) {
      // A shorthand use in a list of layers (`- maxpool: 2`, `- stage: 32`, `- residual: [...]`) is
      // addressed by its options like the map form it stands for: model.layers.3.maxpool.stride.
      if (const std::string option = shorthand_option(root, part); !option.empty()) {
        const YAML::Node shorthand = view[part];
        YAML::Node map(YAML::NodeType::Map);
        map[option] = shorthand;
        cur.remove(part);
        cur[part] = map;
        std::string path;
        for (size_t j = 0; j <= i; ++j) path += (j ? "." : "") + parts[j];
        expanded[path] = shorthand.Mark();
      }
    }
    // `- conv: 2` style items: turn the shorthand into a map only when asked to go below it.
    YAML::Node next = cur[part];
    cur.reset(next);
  }
}

class ExperimentParser {
 public:
  explicit ExperimentParser(Reader& reader) : r_(reader) {}

  ExperimentSpec parse(const YAML::Node& root) {
    ExperimentSpec spec;
    // extends is resolved (and removed) before this; it is listed for the message a typo of it gets.
    MapView top(r_, root, "", {"version", "extends", "name", "description", "data", "budget", "model", "train"});
    if (top.has("version")) {
      int64_t version = 1;
      top.get("version", version);
      if (version != 1) r_.error(top.node("version"), "version", "only version 1 of the DSL exists");
    }
    if (top.require("name")) {
      top.get("name", spec.name);
      static const std::regex kName("[a-z0-9._-]+");
      if (!spec.name.empty() && !std::regex_match(spec.name, kName))
        r_.error(top.node("name"), "name", "'" + spec.name + "' must match [a-z0-9._-]+");
    }
    top.get("description", spec.description);
    parse_data(
        MapView(r_, top.node("data"), "data", {"dataset", "root", "normalize", "augment", "limit", "validation"}),
        spec.data);
    parse_budget(MapView(r_, top.node("budget"), "budget", {"max_params", "max_epochs", "target_test_acc"}),
                 spec.budget);
    const size_t before_model = r_.error_count();
    if (top.require("model"))
      parse_model(MapView(r_, top.node("model"), "model",
                          {"input", "classes", "norm", "groups", "block", "standardize", "blocks", "layers"}),
                  spec.model);
    if (top.require("train"))
      parse_train(MapView(r_, top.node("train"), "train",
                          {"epochs", "batch_size", "optimizer", "schedule", "label_smoothing", "ema", "lookahead",
                           "seed", "device", "threads", "layout", "eval"}),
                  spec.train);
    // The shape walk needs a well-formed model; its misfits join the other problems.
    if (r_.error_count() == before_model && !spec.model.layers.empty()) {
      try {
        plan_model(spec.model);
      } catch (const ConfigError& e) {
        for (const auto& d : e.diagnostics()) r_.error_at(d.loc, d.key, d.message);
      }
    }
    return spec;
  }

 private:
  void parse_data(MapView m, DataSpec& data) {
    m.get_choice("dataset", data.dataset, {"cifar10", "folder"});
    std::string root = kDefaultRoot;
    m.get("root", root);
    std::string problem;
    data.root = expand_env(root, problem);
    if (data.root.empty()) r_.error(m.node("root"), m.path("root"), "must not be empty");
    if (m.has("normalize")) {
      MapView n(r_, m.node("normalize"), m.path("normalize"), {"mean", "std"});
      read_triple(n, "mean", data.mean, Range::Any);
      read_triple(n, "std", data.std, Range::Positive);
    }
    if (m.has("augment")) parse_augment(m.node("augment"), m.path("augment"), data.augment);
    if (m.has("limit")) {
      MapView l(r_, m.node("limit"), m.path("limit"), {"train", "test"});
      l.get("train", data.limit_train, Range::NonNegative);
      l.get("test", data.limit_test, Range::NonNegative);
    }
    if (m.has("validation")) {  // validation: N, or {size: N, seed: S}
      if (m.node("validation").IsMap()) {
        MapView v(r_, m.node("validation"), m.path("validation"), {"size", "seed"});
        v.require("size");
        v.get("size", data.validation, Range::NonNegative);
        v.get("seed", data.validation_seed, Range::NonNegative);
      } else {
        m.get("validation", data.validation, Range::NonNegative);
      }
      if (data.limit_train > 0 && data.validation >= data.limit_train)
        r_.error(m.node("validation"), m.path("validation"),
                 "holds out " + std::to_string(data.validation) + " of the " + std::to_string(data.limit_train) +
                     " training images data.limit.train keeps; leave some to train on");
    }
  }

  void read_triple(MapView& m, const std::string& key, std::array<double, 3>& out, Range range) {
    if (!m.has(key)) return;
    const YAML::Node node = m.node(key);
    if (!node.IsSequence() || node.size() != 3) {
      r_.error(node, m.path(key), "must be a list of 3 numbers, one per colour channel");
      return;
    }
    for (size_t i = 0; i < 3; ++i)
      if (auto v = r_.to_double(node[i], m.path(key) + "." + std::to_string(i), range)) out[i] = *v;
  }

  void parse_augment(const YAML::Node& node, const std::string& path, std::vector<AugmentStep>& out) {
    static const std::vector<std::string> kKinds{"random_crop", "horizontal_flip", "cutout"};
    if (!node.IsSequence()) {
      r_.error(node, path, "must be a list, e.g. [{random_crop: {padding: 4}}, horizontal_flip]");
      return;
    }
    for (size_t i = 0; i < node.size(); ++i) {
      const std::string item_path = path + "." + std::to_string(i);
      YAML::Node item = node[i], options, kind_node;
      std::string kind;
      if (item.IsScalar()) {
        kind_node = item;
      } else if (item.IsMap() && item.size() == 1) {
        kind_node = item.begin()->first;
        options = item.begin()->second;
      } else {
        r_.error(item, item_path, "each step is a name or a one-key map, e.g. {cutout: {size: 8}}");
        continue;
      }
      if (auto k = r_.to_choice(kind_node, item_path, kKinds))
        kind = *k;
      else
        continue;
      AugmentStep step{kind, kind == "random_crop" ? 4 : kind == "cutout" ? 8 : 0};
      const std::string key = kind == "random_crop" ? "padding" : kind == "cutout" ? "size" : "mode";
      if (kind == "horizontal_flip") {
        static const std::vector<std::string> kModes{"random", "alternating"};
        if (options.IsScalar()) {
          if (auto mode = r_.to_choice(options, item_path + ".horizontal_flip", kModes)) step.mode = *mode;
        } else if (options.IsDefined() && !options.IsNull()) {
          MapView o(r_, options, item_path + ".horizontal_flip", {key});
          o.get_choice(key, step.mode, kModes);
        }
      } else if (options.IsScalar()) {
        if (auto v =
                r_.to_int(options, item_path + "." + kind, kind == "cutout" ? Range::Positive : Range::NonNegative))
          step.size = *v;
      } else if (options.IsDefined() && !options.IsNull()) {
        MapView o(r_, options, item_path + "." + kind, {key});
        o.get(key, step.size, kind == "cutout" ? Range::Positive : Range::NonNegative);
      }
      out.push_back(step);
    }
  }

  void parse_budget(MapView m, BudgetSpec& budget) {
    m.get("max_params", budget.max_params, Range::Positive);
    m.get("max_epochs", budget.max_epochs, Range::Positive);
    m.get("target_test_acc", budget.target_test_acc, Range::NonNegative);
    if (budget.target_test_acc > 100)
      r_.error(m.node("target_test_acc"), m.path("target_test_acc"), "is a percentage: at most 100");
  }

  void parse_model(MapView m, ModelSpec& model) {
    if (m.has("input")) {
      const YAML::Node node = m.node("input");
      if (!node.IsSequence() || node.size() != 3) {
        r_.error(node, m.path("input"), "must be [channels, height, width]");
      } else {
        for (size_t i = 0; i < 3; ++i)
          if (auto v = r_.to_int(node[i], m.path("input") + "." + std::to_string(i), Range::Positive))
            model.input[i] = *v;
      }
    }
    m.get("classes", model.classes, Range::Positive);
    m.get_choice("norm", model.norm, norm_names());
    m.get("groups", model.groups, Range::Positive);
    m.get("standardize", model.standardize);
    if (m.has("block")) {
      if (auto block = parse_block(m.node("block"), m.path("block"))) model.block = *block;
    }
    if (m.has("blocks")) parse_blocks(m.node("blocks"), m.path("blocks"));
    if (!m.require("layers")) return;
    const YAML::Node layers = m.node("layers");
    if (!layers.IsSequence() || layers.size() == 0) {
      r_.error(layers, m.path("layers"), "must be a non-empty list of layers");
      return;
    }
    model_ = &model;
    model.layers = parse_layers(layers, m.path("layers"));
    model.block_uses = uses_;
    check_first_only(model.layers, true);
  }

  /// Layer types whose definition says first_only (whiten) stand first in the model.
  void check_first_only(const std::vector<LayerSpec>& layers, bool top) {
    for (size_t i = 0; i < layers.size(); ++i) {
      const LayerDef* def = find_layer_def(layers[i].type);
      if (def != nullptr && !def->first_only.empty() && !(top && i == 0))
        r_.error_at(layers[i].loc, layers[i].path,
                    layers[i].type + " must be the model's first layer: " + def->first_only +
                        (layers[i].via.empty() ? std::string() : " (" + layers[i].via + ")"));
      check_first_only(layers[i].children, false);
    }
  }

  /// A `model.blocks` entry: a named stack whose `$name` scalars are its parameters.
  struct BlockDef {
    std::string name, path;  ///< "stage", "model.blocks.stage"
    SourceLoc loc;
    std::vector<std::pair<std::string, std::optional<YAML::Node>>> params;  ///< name, default (none: required)
    YAML::Node layers;
    bool ok = true;  ///< false: its definition had errors, reported once; uses add none
  };

  void parse_blocks(const YAML::Node& node, const std::string& path) {
    static const std::regex kName("[a-z_][a-z0-9_]*");
    if (!node.IsMap()) {
      r_.error(node, path, "must be a map of block names, each {params: ..., layers: [...]}");
      return;
    }
    for (auto it = node.begin(); it != node.end(); ++it) {
      const std::string name = it->first.Scalar(), block_path = path + "." + name;
      if (!std::regex_match(name, kName)) {
        r_.error(it->first, block_path,
                 "a block name is lower-case letters, digits and _, starting with a letter or _");
        continue;
      }
      if (find_layer_def(name) != nullptr) {
        r_.error(it->first, block_path, "'" + name + "' is a layer type; give the block a name of its own");
        continue;
      }
      MapView b(r_, it->second, block_path, {"params", "layers"});
      BlockDef def{name, block_path, r_.loc_of(it->first, block_path), {}, {}};
      if (!b.ok() || !it->second.IsMap()) {
        if (b.ok()) r_.error(it->second, block_path, "a block is a map: {params: [w], layers: [...]}");
        def.ok = false;
        blocks_.emplace(name, def);
        continue;
      }
      const size_t before = r_.error_count();
      if (b.has("params")) def.params = parse_params(b.node("params"), b.path("params"));
      if (b.require("layers")) {
        def.layers.reset(b.node("layers"));
        if (!def.layers.IsSequence() || def.layers.size() == 0)
          r_.error(def.layers, b.path("layers"), "must be a non-empty list of layers");
      }
      def.ok = r_.error_count() == before;
      blocks_.emplace(name, def);
    }
  }

  /// `params: [w, k]` (all required) or `params: {w: 32, k: ~}` (defaults; ~ is required).
  std::vector<std::pair<std::string, std::optional<YAML::Node>>> parse_params(const YAML::Node& node,
                                                                              const std::string& path) {
    static const std::regex kName("[A-Za-z_][A-Za-z0-9_]*");
    std::vector<std::pair<std::string, std::optional<YAML::Node>>> params;
    auto add = [&](const YAML::Node& key, const std::optional<YAML::Node>& value) {
      const std::string name = key.IsScalar() ? key.Scalar() : "", param_path = path + "." + name;
      if (!std::regex_match(name, kName) || name == "layers") {
        r_.error(key, param_path,
                 name == "layers" ? "'layers' is taken by the block's own layers; name the parameter otherwise"
                                  : "a parameter name is letters, digits and _ (used as $name in the layers)");
        return;
      }
      for (const auto& [seen, unused] : params)
        if (seen == name) return r_.error(key, param_path, "parameter given twice");
      if (value && !value->IsNull() && (!value->IsScalar() || is_param_ref(value->Scalar()))) {
        r_.error(*value, param_path,
                 "a default is a single plain value (a number, a name, true or false), or ~ for none");
        return;
      }
      params.emplace_back(name, value && !value->IsNull() ? value : std::nullopt);
    };
    if (node.IsSequence()) {
      for (const auto& item : node) add(item, std::nullopt);
    } else if (node.IsMap()) {
      for (auto it = node.begin(); it != node.end(); ++it) add(it->first, it->second);
    } else if (!node.IsNull()) {
      r_.error(node, path,
               "must be a list of names ([w, k]) or a map of names to defaults ({w: 32, k: ~}; ~ = required)");
    }
    return params;
  }

  /// Reads one use of a block: its arguments, then its layers with the use entered in the reader.
  void use_block(const BlockDef& b, const YAML::Node& type_node, const YAML::Node& value, const std::string& path,
                 std::vector<LayerSpec>& out) {
    const std::string use_path = path + "." + b.name;
    if (!b.ok) return;
    // Blocks that use each other twice over grow exponentially: a bound, not a hang.
    constexpr size_t kMaxUses = 4096;
    if (uses_.size() >= kMaxUses) {
      if (uses_.size() == kMaxUses)
        r_.error(type_node, use_path,
                 "the blocks expand to more than " + std::to_string(kMaxUses) +
                     " uses; a model this large is not meant (does a block use another several times over?)");
      uses_.push_back(BlockUseSpec{});
      return;
    }
    if (std::find(active_.begin(), active_.end(), b.name) != active_.end()) {
      std::vector<std::string> chain = active_;
      chain.push_back(b.name);
      r_.error(
          type_node, use_path,
          "block '" + b.name + "' uses itself (" + join(chain, " → ") + "); a block may use other blocks, not itself");
      return;
    }
    BlockFrame frame{b.name, use_path, b.path, r_.loc_of(type_node, use_path), b.loc, {}, {}};
    for (const auto& param : b.params) frame.params.push_back(param.first);
    const std::vector<std::string>& names = frame.params;
    const std::string defined_at = "block '" + b.name + "' defined at line " + std::to_string(b.loc.line) +
                                   (b.loc.file == frame.use_loc.file ? "" : " of " + b.loc.file);
    const size_t before = r_.error_count();
    // An argument that is itself a $name (a block used inside another) is resolved here, once.
    auto take = [&](const std::string& name, const YAML::Node& node, const std::string& arg_path) {
      if (!node.IsScalar())
        return r_.error(node, arg_path, "a block parameter is a single value (a number, a name, true or false)");
      if (const auto v = r_.resolve(node, arg_path)) frame.args[name] = {v->node, v->path};
    };
    if (value.IsDefined() && !value.IsNull() && !value.IsMap()) {
      // `- stage: 32` sets the only parameter, or the only one without a default.
      std::vector<std::string> required;
      for (const auto& [name, default_value] : b.params)
        if (!default_value) required.push_back(name);
      const std::vector<std::string>& target = names.size() == 1 ? names : required;
      if (target.size() != 1) {
        r_.error(value, use_path,
                 names.empty() ? defined_at + " takes no parameters"
                               : defined_at + " takes its parameters as a map: {" + join(names, ": ..., ") + ": ...}");
        return;
      }
      for (const auto& [name, default_value] : b.params)
        if (name == target[0])
          take(name, value, use_path);
        else
          frame.args[name] = {*default_value, b.path + ".params." + name};
    } else {
      MapView m(r_, value, use_path, names);
      for (const auto& [name, default_value] : b.params) {
        if (m.has(name))
          take(name, m.node(name), m.path(name));
        else if (default_value)
          frame.args[name] = {*default_value, b.path + ".params." + name};
        else
          r_.error_at(frame.use_loc, m.path(name), "missing parameter of " + defined_at);
      }
    }
    if (r_.error_count() != before) return;
    std::string args;
    for (const auto& name : names) args += (args.empty() ? "" : ", ") + name + ": " + frame.args[name].node.Scalar();
    uses_.push_back(BlockUseSpec{use_path, b.name, args});
    r_.enter_block(std::move(frame));
    active_.push_back(b.name);
    std::vector<LayerSpec> layers = parse_layers(b.layers, use_path + ".layers");
    active_.pop_back();
    r_.leave_block();
    for (auto& layer : layers) out.push_back(std::move(layer));
  }

  /// A block: conv once, at most one norm and one activation, any order.
  std::optional<std::vector<std::string>> parse_block(const YAML::Node& node, const std::string& path) {
    if (!node.IsSequence()) {
      r_.error(node, path, "must be a list such as [conv, relu, norm]");
      return std::nullopt;
    }
    std::vector<std::string> choices{"conv", "norm"};
    const std::vector<std::string> activations = activation_names();
    choices.insert(choices.end(), activations.begin(), activations.end());
    std::vector<std::string> block;
    int convs = 0, norms = 0, acts = 0;
    for (size_t i = 0; i < node.size(); ++i) {
      auto step = r_.to_choice(node[i], path + "." + std::to_string(i), choices);
      if (!step) return std::nullopt;
      (*step == "conv" ? convs : *step == "norm" ? norms : acts)++;
      block.push_back(*step);
    }
    if (convs != 1 || norms > 1 || acts > 1) {
      r_.error(node, path, "needs conv exactly once, at most one norm and at most one activation");
      return std::nullopt;
    }
    return block;
  }

  std::vector<LayerSpec> parse_layers(const YAML::Node& node, const std::string& path) {
    std::vector<LayerSpec> out;
    for (size_t i = 0; i < node.size(); ++i) {
      const std::string item_path = path + "." + std::to_string(i);
      parse_layer(node[i], item_path, out);
    }
    return out;
  }

  /// Appends the layer's specs to `out`: one, a conv's block steps, or a block use's layers.
  void parse_layer(const YAML::Node& item, const std::string& path, std::vector<LayerSpec>& out) {
    std::string type;
    // reset() rebinds; operator= on a bound yaml-cpp node would overwrite the document.
    YAML::Node value, type_node;
    type_node.reset(item);
    if (item.IsScalar()) {
      type = item.Scalar();
    } else if (item.IsMap() && item.size() == 1) {
      type_node.reset(item.begin()->first);
      type = type_node.Scalar();
      value.reset(item.begin()->second);
    } else if (item.IsMap()) {
      std::vector<std::string> keys;
      for (const auto& kv : item) keys.push_back(kv.first.Scalar());
      r_.error(item, path,
               "a layer is one key (its type) with its options below it; found keys " + join(keys) +
                   " (indent the options under the type, e.g. - conv: {out: 16, kernel: 3})");
      return;
    } else {
      r_.error(item, path, "a layer must be a type name or a one-key map, e.g. - conv: {out: 16}");
      return;
    }
    std::optional<Reader::Value> given;  // `- $act` inside a block: the argument names the type
    if (is_param_ref(type)) {
      given = r_.resolve(type_node, path);
      if (!given) return;
      if (!given->node.IsScalar()) return r_.error(given->node, given->path, "must name a layer type" + given->note);
      type = given->node.Scalar();
    }
    const LayerDef* def = find_layer_def(type);
    if (def == nullptr) {
      if (const auto block = blocks_.find(type); block != blocks_.end())
        return use_block(block->second, type_node, value, path, out);
      std::vector<std::string> candidates = layer_names(), block_names;
      for (const auto& [name, unused] : blocks_) block_names.push_back(name);
      candidates.insert(candidates.end(), block_names.begin(), block_names.end());
      std::string message = "unknown layer type '" + type + "'";
      const std::string near = did_you_mean(type, candidates);
      if (!near.empty()) message += " (did you mean '" + near + "'?)";
      message +=
          "; known types: " + join(layer_names()) + (block_names.empty() ? "" : "; blocks: " + join(block_names));
      if (given) return r_.error(given->node, given->path, message + given->note);
      r_.error(type_node, path, message);
      return;
    }
    LayerSpec spec;
    spec.type = type;
    spec.path = path + "." + type;
    spec.loc = r_.loc_of(type_node, spec.path);
    spec.via = r_.block_context(spec.path);
    for (const auto& opt : def->options)  // the layer's own key, read below, overrides these
      spec.options[opt.name] = opt.model_default.empty() ? opt.default_value : model_->default_for(opt.model_default);

    YAML::Node options;
    options.reset(value);
    if (value.IsDefined() && !value.IsNull() && !value.IsMap()) {
      if (def->shorthand.empty()) {
        r_.error(value, spec.path, "takes no shorthand value; write its options as a map (" + option_list(*def) + ")");
        return;
      }
      options.reset(YAML::Node(YAML::NodeType::Map));
      options[def->shorthand] = value;
    }
    std::vector<std::string> known;
    for (const auto& opt : def->options) known.push_back(opt.name);
    const size_t before = r_.error_count();
    MapView m(r_, options, spec.path, known);
    for (const auto& opt : def->options) read_option(m, opt, spec, value);
    if (r_.error_count() != before) return;
    expand_block(std::move(spec), out);
  }

  static std::string option_list(const LayerDef& def) {
    std::vector<std::string> names;
    for (const auto& opt : def.options) names.push_back(opt.name);
    return names.empty() ? "none" : join(names);
  }

  void read_option(MapView& m, const OptionDef& opt, LayerSpec& spec, const YAML::Node& raw) {
    if (!m.has(opt.name)) {
      if (opt.required) {
        const YAML::Node at = raw.IsDefined() ? raw : m.self();
        r_.error_at(raw.IsDefined() ? r_.loc_of(at, m.path(opt.name)) : spec.loc, m.path(opt.name),
                    "missing required option of " + spec.type);
      }
      return;
    }
    // A shorthand value has no node of its own in the map; point at the original.
    const YAML::Node node = m.node(opt.name);
    const std::string path = m.path(opt.name);
    switch (opt.kind) {
      case OptionKind::Int:
        if (auto v = r_.to_int(node, path, opt.range)) spec.options[opt.name] = *v;
        break;
      case OptionKind::Double:
        if (auto v = r_.to_double(node, path, opt.range)) spec.options[opt.name] = *v;
        break;
      case OptionKind::Bool:
        if (auto v = r_.to_bool(node, path)) spec.options[opt.name] = *v;
        break;
      case OptionKind::String:
        if (auto v = r_.to_choice(node, path, option_choices(opt))) spec.options[opt.name] = *v;
        break;
      case OptionKind::Block:
        if (node.IsSequence()) {
          if (auto block = parse_block(node, path)) spec.options[opt.name] = join(*block, ",");
        } else if (auto v = r_.to_bool(node, path)) {
          spec.options[opt.name] = *v;
        }
        break;
      case OptionKind::Layers:
        if (!node.IsSequence() || node.size() == 0)
          r_.error(node, path, "must be a non-empty list of layers");
        else
          spec.children = parse_layers(node, path);
        break;
    }
  }

  /// `norm` layers default to the model's norm and groups.
  /// A conv with a block becomes its steps: conv, activation and norm layers.
  void expand_block(LayerSpec spec, std::vector<LayerSpec>& out) const {
    if (spec.type != "conv") {
      out.push_back(std::move(spec));
      return;
    }
    std::vector<std::string> block = model_->block;
    const OptionValue block_option = spec.options["block"];
    if (const bool* enabled = std::get_if<bool>(&block_option); enabled != nullptr && !*enabled) block = {"conv"};
    if (const std::string* steps = std::get_if<std::string>(&block_option)) {
      block.clear();
      std::stringstream ss(*steps);
      for (std::string step; std::getline(ss, step, ',');) block.push_back(step);
    }
    const std::string norm = spec.get_string("norm").empty() ? model_->norm : spec.get_string("norm");
    spec.options["block"] = false;
    for (const auto& step : block) {
      if (step == "conv") {
        out.push_back(spec);
        continue;
      }
      LayerSpec extra;
      extra.type = step;
      extra.path = spec.path;  // errors point at the conv that asked for this step
      extra.loc = spec.loc;
      for (const auto& opt : find_layer_def(step)->options)
        extra.options[opt.name] =
            opt.model_default.empty() ? opt.default_value : model_->default_for(opt.model_default);
      if (step == "norm") extra.options["type"] = norm;  // the conv's own norm
      out.push_back(std::move(extra));
    }
  }

  void parse_train(MapView m, TrainSpec& train) {
    if (m.require("epochs")) m.get("epochs", train.epochs, Range::Positive);
    m.get("batch_size", train.batch_size, Range::Positive);
    if (m.has("optimizer")) {
      MapView o(r_, m.node("optimizer"), m.path("optimizer"),
                {"type", "lr", "momentum", "nesterov", "weight_decay", "param_groups"});
      o.get_choice("type", train.optimizer.type, {"sgd", "adam", "adamw"});
      o.get("lr", train.optimizer.lr, Range::Positive);
      o.get("momentum", train.optimizer.momentum, Range::Probability);
      o.get("nesterov", train.optimizer.nesterov);
      o.get("weight_decay", train.optimizer.weight_decay, Range::NonNegative);
      if (train.optimizer.nesterov && (train.optimizer.type != "sgd" || train.optimizer.momentum <= 0))
        r_.error(o.node("nesterov"), o.path("nesterov"), "needs optimizer.type sgd with momentum > 0");
      if (o.has("param_groups")) {
        const std::vector<std::string> kinds{"weights", "biases", "norm_scales", "norm_biases"};
        MapView g(r_, o.node("param_groups"), o.path("param_groups"), kinds);
        for (const auto& kind : kinds) {
          if (!g.ok() || !g.has(kind)) continue;
          MapView k(r_, g.node(kind), g.path(kind), {"lr_scale", "weight_decay"});
          if (!k.ok()) continue;
          ParamGroupSpec& group = train.optimizer.param_groups[kind];
          k.get("lr_scale", group.lr_scale, Range::NonNegative);
          if (k.has("weight_decay")) {
            double decay = 0;
            k.get("weight_decay", decay, Range::NonNegative);
            if (decay != (kind == "weights" ? train.optimizer.weight_decay : 0.0)) group.weight_decay = decay;
          }
          // A class at its defaults is no group: the run and its hash are the plain ones.
          if (group.lr_scale == 1.0 && !group.weight_decay) train.optimizer.param_groups.erase(kind);
        }
      }
    }
    if (m.has("schedule")) {
      MapView s(r_, m.node("schedule"), m.path("schedule"), {"type", "max_lr", "pct_start", "step_size", "gamma"});
      s.get_choice("type", train.schedule.type, {"constant", "step", "cosine", "onecycle"});
      s.get("max_lr", train.schedule.max_lr, Range::Positive);
      s.get("pct_start", train.schedule.pct_start, Range::Probability);
      s.get("step_size", train.schedule.step_size, Range::Positive);
      s.get("gamma", train.schedule.gamma, Range::Positive);
    }
    m.get("label_smoothing", train.label_smoothing, Range::Probability);
    m.get("ema", train.ema, Range::Probability);
    if (m.has("lookahead")) {
      MapView l(r_, m.node("lookahead"), m.path("lookahead"), {"every", "decay"});
      if (l.ok()) {
        train.lookahead_every = 5;
        train.lookahead_decay = 0.7737809375;                       // 0.95^5: airbench's per-step 0.95 over 5 steps
        l.get("every", train.lookahead_every, Range::NonNegative);  // 0: off, so a grid can compare
        l.get("decay", train.lookahead_decay, Range::Probability);
        if (train.lookahead_every == 0) train.lookahead_decay = 0;
        if (train.ema > 0 && train.lookahead_every > 0)
          r_.error(m.node("lookahead"), m.path("lookahead"),
                   "train.ema and train.lookahead both average the weights; use one of them");
      }
    }
    m.get("seed", train.seed, Range::NonNegative);
    m.get_choice("device", train.device, {"auto", "cpu", "cuda"});
    m.get("threads", train.threads, Range::NonNegative);
    m.get_choice("layout", train.layout, {"auto", "nchw", "channels_last"});
    if (m.has("eval")) {
      MapView e(r_, m.node("eval"), m.path("eval"), {"tta"});
      e.get_choice("tta", train.tta, {"none", "flip", "flip_translate"});
    }
  }

  Reader& r_;
  const ModelSpec* model_ = nullptr;
  std::map<std::string, BlockDef> blocks_;
  std::vector<std::string> active_;  ///< blocks being read, outermost first (a block may not use itself)
  std::vector<BlockUseSpec> uses_;
};

}  // namespace

ExperimentSpec parse_experiment(const std::string& text, const std::string& label,
                                const std::vector<std::string>& sets) {
  const std::vector<Override> overrides = parse_overrides(sets);
  if (text.find_first_not_of(" \t\r\n") == std::string::npos)
    throw ConfigError(
        {Diagnostic{SourceLoc{label, 1, 1}, "",
                    "the file is empty; an experiment needs at least name, model.layers and train.epochs"}});
  ResolvedYaml resolved = resolve_extends(text, label);
  YAML::Node root = resolved.root;
  if (!root.IsMap())
    throw ConfigError({Diagnostic{SourceLoc{label, 1, 1}, "",
                                  "the top level must be a map of keys (name, data, budget, model, train), not a " +
                                      std::string(root.IsSequence() ? "list" : "single value")}});
  std::map<std::string, std::string> override_paths;
  std::map<std::string, YAML::Mark> expanded;
  for (const auto& o : overrides) {
    apply_override(root, o, expanded);
    override_paths[o.path] = o.arg;
  }
  Reader reader(label, override_paths, resolved.origins);
  reader.set_expanded(std::move(expanded));
  ExperimentSpec spec = ExperimentParser(reader).parse(root);
  if (!reader.diagnostics().empty()) {
    std::vector<Diagnostic> diags = reader.diagnostics();
    std::stable_sort(diags.begin(), diags.end(), [](const Diagnostic& a, const Diagnostic& b) {
      return std::tie(a.loc.line, a.loc.col) < std::tie(b.loc.line, b.loc.col);
    });
    throw ConfigError(diags);
  }
  spec.source_file = label;
  spec.files = resolved.chain;
  spec.yaml = YAML::Dump(root);
  if (spec.train.epochs > spec.budget.max_epochs)
    throw BudgetError(label + ": train.epochs is " + std::to_string(spec.train.epochs) + " but budget.max_epochs is " +
                      std::to_string(spec.budget.max_epochs) + "; lower train.epochs or raise the budget");
  return spec;
}

std::optional<std::string> yaml_scalar_at(const std::string& yaml, const std::string& dotted) {
  YAML::Node cur;
  try {
    cur = YAML::Load(yaml);
  } catch (const YAML::Exception&) {
    return std::nullopt;
  }
  std::stringstream ss(dotted);
  for (std::string part; std::getline(ss, part, '.');) {
    YAML::Node next;
    if (cur.IsMap()) {
      next.reset(cur[part]);
    } else if (cur.IsSequence() && is_index(part) && std::stoul(part) < cur.size()) {
      next.reset(cur[std::stoul(part)]);
    } else {
      return std::nullopt;
    }
    if (!next.IsDefined()) return std::nullopt;
    cur.reset(next);
  }
  return cur.IsScalar() ? std::optional<std::string>(cur.Scalar()) : std::nullopt;
}

ExperimentSpec load_experiment(const std::string& path, const std::vector<std::string>& sets) {
  std::string why;
  const std::optional<std::string> text = read_text_file(path, &why);
  if (!text) throw ConfigError({Diagnostic{SourceLoc{path, 0, 0}, "", "cannot open the experiment file: " + why}});
  return parse_experiment(*text, path, sets);
}

}  // namespace runner
