// One function per CLI subcommand; main.cpp parses arguments and maps the
// exceptions these throw to exit codes.
#pragma once
#include <string>
#include <vector>

namespace runner {

struct CheckArgs {
  std::string file;
  std::vector<std::string> sets;
};
int cmd_check(const CheckArgs& args);
int cmd_layers();

}  // namespace runner
