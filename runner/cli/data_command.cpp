// runner data fetch cifar10 [DIR] [--url URL]: download and unpack a dataset, MD5-checked.
#include "runner/cli/command.h"
#include "runner/cli/commands.h"

namespace runner {

Command data_command(CLI::App& app) {
  struct Args {
    std::string dataset, dir = "data", url;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = add_subcommand(app, "data", "Get datasets");
  cmd->require_subcommand(1);
  CLI::App* fetch = add_subcommand(*cmd, "fetch", "Download and unpack a dataset, checking its MD5");
  fetch->add_option("dataset", args->dataset, "dataset name")->required()->check(CLI::IsMember({"cifar10"}));
  fetch->add_option("dir", args->dir, "where to unpack (gets cifar-10-batches-bin/)")->capture_default_str();
  fetch->add_option("--url", args->url, "download from a mirror or a file:// copy instead");
  return {cmd, [args] { return cmd_data_fetch(args->dataset, args->dir, args->url); }};
}

}  // namespace runner
