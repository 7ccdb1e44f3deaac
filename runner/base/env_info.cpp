#include "runner/base/env_info.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>

namespace runner {

std::string capture_command(const std::string& command, bool& ok) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    ok = false;
    return out;
  }
  char buffer[512];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
  ok = pclose(pipe) == 0;
  return out;
}

std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string self_path() {
  char self[4096];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  return std::string(self, n > 0 ? static_cast<size_t>(n) : 0);
}

std::string host_name() {
  char host[256] = {0};
  return gethostname(host, sizeof host - 1) == 0 ? host : "";
}

EnvInfo collect_env_info(const std::string& path) {
  EnvInfo info;
  info.host = host_name();
  std::error_code ec;
  std::filesystem::path dir = std::filesystem::absolute(path, ec).parent_path();
  if (ec || !std::filesystem::is_directory(dir)) dir = std::filesystem::current_path();
  const std::string git = "git -C " + shell_quote(dir.string()) + " ";
  bool ok = false;
  std::string commit = capture_command(git + "rev-parse HEAD 2>/dev/null", ok);
  if (!ok) return info;
  info.git_commit = commit.substr(0, commit.find_first_of("\r\n"));
  const std::string status = capture_command(git + "status --porcelain --untracked-files=no 2>/dev/null", ok);
  if (ok) info.git_dirty = status.empty() ? 0 : 1;
  return info;
}

bool process_alive(long pid) { return pid > 0 && (kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM); }

}  // namespace runner
