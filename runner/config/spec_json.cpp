#include "runner/config/spec_json.h"

#include <cstdio>
#include <sstream>

#include "layers/layer_def.h"

namespace runner {

namespace {
/// An option added after configs were hashed, at its default: left out so that
/// configs written before it keep their hash (OptionDef::hashed_at_default).
bool at_unhashed_default(const LayerDef& def, const std::string& key, const OptionValue& value,
                         const ModelSpec& model) {
  for (const auto& opt : def.options)
    if (opt.name == key && !opt.hashed_at_default)
      return value == (opt.model_default.empty() ? opt.default_value : model.default_for(opt.model_default));
  return false;
}

nlohmann::json layer_json(const LayerSpec& layer, const ModelSpec& model) {
  nlohmann::json options = nlohmann::json::object();
  const LayerDef* def = find_layer_def(layer.type);
  for (const auto& option : layer.options) {
    const std::string& key = option.first;  // clang 14 (C++17) captures no structured binding
    if (def != nullptr && at_unhashed_default(*def, key, option.second, model)) continue;
    std::visit([&](const auto& v) { options[key] = v; }, option.second);
  }
  if (!layer.children.empty()) {
    nlohmann::json children = nlohmann::json::array();
    for (const auto& child : layer.children) children.push_back(layer_json(child, model));
    options["layers"] = children;
  }
  return nlohmann::json{{layer.type, options}};
}
}  // namespace

namespace {
nlohmann::json experiment_json_base(const ExperimentSpec& s) {
  nlohmann::json augment = nlohmann::json::array();
  for (const auto& a : s.data.augment) {
    augment.push_back({{"type", a.type}, {"size", a.size}});
    if (a.mode != "random") augment.back()["mode"] = a.mode;  // newer key: absent keeps older hashes
  }
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& layer : s.model.layers) layers.push_back(layer_json(layer, s.model));
  const TrainSpec& t = s.train;
  return {
      {"name", s.name},
      {"description", s.description},
      {"data",
       {{"dataset", s.data.dataset},
        {"root", s.data.root},
        {"normalize", {{"mean", s.data.mean}, {"std", s.data.std}}},
        {"augment", augment},
        {"limit", {{"train", s.data.limit_train}, {"test", s.data.limit_test}}}}},
      {"budget",
       {{"max_params", s.budget.max_params},
        {"max_epochs", s.budget.max_epochs},
        {"target_test_acc", s.budget.target_test_acc}}},
      {"model",
       {{"input", s.model.input},
        {"classes", s.model.classes},
        {"norm", s.model.norm},
        {"groups", s.model.groups},
        {"block", s.model.block},
        {"layers", layers}}},
      {"train",
       {{"epochs", t.epochs},
        {"batch_size", t.batch_size},
        {"optimizer",
         {{"type", t.optimizer.type},
          {"lr", t.optimizer.lr},
          {"momentum", t.optimizer.momentum},
          {"nesterov", t.optimizer.nesterov},
          {"weight_decay", t.optimizer.weight_decay}}},
        {"schedule",
         {{"type", t.schedule.type},
          {"max_lr", t.schedule.max_lr},
          {"pct_start", t.schedule.pct_start},
          {"step_size", t.schedule.step_size},
          {"gamma", t.schedule.gamma}}},
        {"label_smoothing", t.label_smoothing},
        {"seed", t.seed},
        {"device", t.device},
        {"threads", t.threads},
        {"eval", {{"tta", t.tta}}}}},
  };
}
}  // namespace

nlohmann::json experiment_json(const ExperimentSpec& s) {
  nlohmann::json j = experiment_json_base(s);
  // Newer keys appear only when used: configs without them keep their hash.
  if (s.data.validation > 0) j["data"]["validation"] = {{"size", s.data.validation}, {"seed", s.data.validation_seed}};
  if (s.train.ema > 0) j["train"]["ema"] = s.train.ema;
  if (s.train.lookahead_every > 0)
    j["train"]["lookahead"] = {{"every", s.train.lookahead_every}, {"decay", s.train.lookahead_decay}};
  for (const auto& [kind, group] : s.train.optimizer.param_groups) {
    nlohmann::json& g = j["train"]["optimizer"]["param_groups"][kind];
    g["lr_scale"] = group.lr_scale;
    if (group.weight_decay) g["weight_decay"] = *group.weight_decay;
  }
  if (s.model.standardize) j["model"]["standardize"] = true;
  if (s.train.layout != "auto") j["train"]["layout"] = s.train.layout;
  return j;
}

std::string config_hash(const nlohmann::json& config) {
  // Where and how fast it runs is not what it is: names, the data's path,
  // device and threads stay out of the identity.
  nlohmann::json identity = config;
  identity.erase("name");
  identity.erase("description");
  if (identity.contains("data")) identity["data"].erase("root");
  if (identity.contains("train")) {
    identity["train"].erase("threads");
    identity["train"].erase("device");
    identity["train"].erase("layout");
  }
  const std::string text = identity.dump();  // nlohmann orders object keys: a stable text
  uint64_t h = 1469598103934665603ULL;       // FNV-1a
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ULL;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

nlohmann::json json_at(const nlohmann::json& config, const std::string& dotted) {
  const nlohmann::json* cur = &config;
  std::stringstream ss(dotted);
  for (std::string part; std::getline(ss, part, '.');) {
    if (cur->is_object() && cur->contains(part)) {
      cur = &(*cur)[part];
    } else if (cur->is_array() && !part.empty() && part.find_first_not_of("0123456789") == std::string::npos &&
               std::stoul(part) < cur->size()) {
      cur = &(*cur)[std::stoul(part)];
    } else {
      return nullptr;
    }
  }
  return *cur;
}

}  // namespace runner
