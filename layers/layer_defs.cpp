// The torch-free half of the registry: every layer type's and norm's schema and
// plan, which the config stage reads (registry.cpp keeps the module makers).
#include "layers/layer_def.h"

#include <map>
#include <sstream>

namespace runner {

namespace {

// Function-local statics: registration runs from other files' static
// initialisers, whose order relative to this file is unspecified.
std::map<std::string, LayerDef>& layers() {
  static std::map<std::string, LayerDef> table;
  return table;
}

std::map<std::string, NormDef>& norms() {
  static std::map<std::string, NormDef> table;
  return table;
}

template <class Map>
std::vector<std::string> keys_of(const Map& map) {
  std::vector<std::string> names;
  for (const auto& [name, entry] : map) names.push_back(name);
  return names;
}

}  // namespace

std::string shape_str(const Shape& shape) {
  std::ostringstream out;
  out << "[-1";
  for (int64_t d : shape) out << ", " << d;
  out << "]";
  return out.str();
}

void register_layer_def(LayerDef def) {
  const std::string name = def.name;
  if (!layers().emplace(name, std::move(def)).second)
    throw std::logic_error("layer type '" + name + "' registered twice");
}

void register_norm_def(NormDef def) {
  const std::string name = def.name;
  if (!norms().emplace(name, std::move(def)).second) throw std::logic_error("norm '" + name + "' registered twice");
}

const LayerDef* find_layer_def(const std::string& name) {
  auto it = layers().find(name);
  return it == layers().end() ? nullptr : &it->second;
}

const NormDef* find_norm_def(const std::string& name) {
  auto it = norms().find(name);
  return it == norms().end() ? nullptr : &it->second;
}

std::vector<std::string> layer_names() { return keys_of(layers()); }
std::vector<std::string> norm_names() { return keys_of(norms()); }

std::vector<std::string> activation_names() {
  std::vector<std::string> names;
  for (const auto& [name, def] : layers())
    if (def.role == LayerRole::Activation) names.push_back(name);
  return names;
}

std::vector<std::string> option_choices(const OptionDef& option) {
  switch (option.names) {
    case Names::Norms:
      return norm_names();
    case Names::Activations:
      return activation_names();
    case Names::Listed:
      break;
  }
  return option.choices;
}

}  // namespace runner
