#include "layers/registry.h"

#include <map>
#include <sstream>

namespace runner {
namespace {

struct LayerEntry {
  LayerDef def;
  MakeLayerFn make;
};
struct NormEntry {
  NormDef def;
  MakeNormFn make;
};

// Function-local statics: registration runs from other files' static
// initialisers, whose order relative to this file is unspecified.
std::map<std::string, LayerEntry>& layers() {
  static std::map<std::string, LayerEntry> table;
  return table;
}
std::map<std::string, NormEntry>& norms() {
  static std::map<std::string, NormEntry> table;
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

bool register_layer(LayerDef def, MakeLayerFn make) {
  const std::string name = def.name;
  if (!layers().emplace(name, LayerEntry{std::move(def), std::move(make)}).second)
    throw std::logic_error("layer type '" + name + "' registered twice");
  return true;
}

bool register_norm(NormDef def, MakeNormFn make) {
  const std::string name = def.name;
  if (!norms().emplace(name, NormEntry{std::move(def), std::move(make)}).second)
    throw std::logic_error("norm '" + name + "' registered twice");
  return true;
}

const LayerDef* find_layer_def(const std::string& name) {
  auto it = layers().find(name);
  return it == layers().end() ? nullptr : &it->second.def;
}

const NormDef* find_norm_def(const std::string& name) {
  auto it = norms().find(name);
  return it == norms().end() ? nullptr : &it->second.def;
}

const MakeLayerFn& find_layer_make(const std::string& name) {
  auto it = layers().find(name);
  if (it == layers().end()) throw std::logic_error("no layer type '" + name + "' in the registry");
  return it->second.make;
}

const MakeNormFn& find_norm_make(const std::string& name) {
  auto it = norms().find(name);
  if (it == norms().end()) throw std::logic_error("no norm '" + name + "' in the registry");
  return it->second.make;
}

std::vector<std::string> layer_names() { return keys_of(layers()); }
std::vector<std::string> norm_names() { return keys_of(norms()); }

}  // namespace runner
