// The LibTorch half of the registry: each layer type's and norm's module maker.
// Their schemas and plans go to the torch-free half (layer_defs.cpp).
#include "layers/registry.h"

#include <map>

namespace runner {

namespace {

std::map<std::string, MakeLayerFn>& layer_makers() {
  static std::map<std::string, MakeLayerFn> table;
  return table;
}

std::map<std::string, MakeNormFn>& norm_makers() {
  static std::map<std::string, MakeNormFn> table;
  return table;
}

}  // namespace

bool register_layer(LayerDef def, MakeLayerFn make) {
  const std::string name = def.name;
  register_layer_def(std::move(def));  // throws for a name registered twice
  layer_makers().emplace(name, std::move(make));
  return true;
}

bool register_norm(NormDef def, MakeNormFn make) {
  const std::string name = def.name;
  register_norm_def(std::move(def));
  norm_makers().emplace(name, std::move(make));
  return true;
}

const MakeLayerFn& find_layer_make(const std::string& name) {
  auto it = layer_makers().find(name);
  if (it == layer_makers().end()) throw std::logic_error("no layer type '" + name + "' in the registry");
  return it->second;
}

const MakeNormFn& find_norm_make(const std::string& name) {
  auto it = norm_makers().find(name);
  if (it == norm_makers().end()) throw std::logic_error("no norm '" + name + "' in the registry");
  return it->second;
}

}  // namespace runner
