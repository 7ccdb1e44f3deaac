#include "runner/commands.h"

#include <iostream>

#include "runner/builder.h"
#include "runner/config.h"
#include "runner/summary.h"
#include "runner/yaml_reader.h"

namespace runner {

int cmd_check(const CheckArgs& args) {
  const ExperimentSpec spec = load_experiment(args.file, args.sets);
  const BuiltModel built = build_model(spec.model);
  std::cout << format_summary(built.plan);
  check_param_budget(built.plan, spec.budget);
  std::cout << spec.name << ": OK — " << format_thousands(built.plan.total_params) << " trainable parameters < "
            << format_thousands(spec.budget.max_params) << ", " << spec.train.epochs
            << " epochs <= " << spec.budget.max_epochs << "\n";
  return 0;
}

int cmd_layers() {
  for (const auto& name : layer_names()) {
    const LayerDef* def = find_layer_def(name);
    std::vector<std::string> options;
    for (const auto& opt : def->options) options.push_back(opt.name + (opt.required ? " (required)" : ""));
    std::cout << name << ": " << def->summary << (options.empty() ? "" : "; options: " + join(options)) << "\n";
  }
  std::cout << "norms: " << join(norm_names()) << "\n";
  return 0;
}

}  // namespace runner
