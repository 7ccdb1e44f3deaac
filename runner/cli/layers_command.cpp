// runner layers: the layer types and norms the registry holds.
#include "runner/cli/command.h"
#include "runner/cli/commands.h"

namespace runner {

Command layers_command(CLI::App& app) {
  CLI::App* cmd = add_subcommand(app, "layers", "List the layer types and norms the DSL knows");
  return {cmd, [] { return cmd_layers(); }};
}

}  // namespace runner
