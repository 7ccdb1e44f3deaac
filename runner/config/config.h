// Stage 1: YAML → ExperimentSpec. No LibTorch. Every problem in a file is
// collected and thrown together as one ConfigError whose lines read
// `file:line:col: key 'a.b': message`.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "runner/config/spec.h"

namespace runner {

/// Reads, overrides (`--set a.b=value`), expands ${VAR}, validates and plans
/// the experiment. Throws ConfigError on any problem, BudgetError when
/// train.epochs exceeds budget.max_epochs.
ExperimentSpec load_experiment(const std::string& path, const std::vector<std::string>& sets = {});

/// The same from text; `label` stands for the file name in messages.
ExperimentSpec parse_experiment(const std::string& text, const std::string& label,
                                const std::vector<std::string>& sets = {});

/// The scalar at a dotted path of experiment YAML as written (`model.blocks.net.params.stem`:
/// a block's parameter, which the recorded config, expanded, does not have); nullopt if none.
std::optional<std::string> yaml_scalar_at(const std::string& yaml, const std::string& dotted);

}  // namespace runner
