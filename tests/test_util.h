// Helpers shared by the test files.
#pragma once
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

namespace test_util {

inline std::string source_path(const std::string& relative) { return std::string(RUNNER_SOURCE_DIR) + "/" + relative; }

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

/// Result of running the runner binary.
struct Run {
  int exit_code = -1;
  std::string output;  ///< stdout and stderr together
};

/// Runs `build/runner ARGS` through the shell, capturing both streams.
inline Run run_runner(const std::string& args) {
  Run run;
  const std::string command = std::string(RUNNER_BINARY) + " " + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) run.output.append(buffer, n);
  const int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return run;
}

}  // namespace test_util
