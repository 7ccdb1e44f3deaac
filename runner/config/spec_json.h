// The resolved experiment (every default filled in) as JSON, for the results
// store: `json_extract(config_json, '$.model.norm')` works whatever the YAML omitted.
#pragma once
#include <nlohmann/json.hpp>

#include "runner/config/spec.h"

namespace runner {

nlohmann::json experiment_json(const ExperimentSpec& spec);

/// Stable hash of what identifies a training setup: the config JSON without
/// name, description, data.root, train.threads and train.device; 16 hex digits.
std::string config_hash(const nlohmann::json& config);

/// The value at a dotted path ("model.norm", "train.optimizer.lr", "model.layers.3.conv.out"), or null.
nlohmann::json json_at(const nlohmann::json& config, const std::string& dotted);

}  // namespace runner
