// Facts about where a run happens, recorded with it.
#pragma once
#include <string>

namespace runner {

struct EnvInfo {
  std::string host;
  std::string git_commit;  ///< empty outside a git checkout
  int git_dirty = -1;      ///< -1 unknown
};

/// This machine's host name.
std::string host_name();

/// Host name and the git state of the checkout containing `path`.
EnvInfo collect_env_info(const std::string& path);

/// True when `pid` names a live process on this host.
bool process_alive(long pid);

/// Runs a shell command; returns its stdout and sets `ok` to whether it exited 0.
std::string capture_command(const std::string& command, bool& ok);

/// Quotes a string for /bin/sh.
std::string shell_quote(const std::string& text);

/// The absolute path of this executable.
std::string self_path();

}  // namespace runner
