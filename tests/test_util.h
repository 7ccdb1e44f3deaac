// Helpers shared by the test files.
#pragma once
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
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

/// Runs a shell command, capturing stdout and stderr together.
inline Run run_shell(const std::string& command) {
  Run run;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return run;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) run.output.append(buffer, n);
  const int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return run;
}

/// Runs `build/runner ARGS`, capturing both streams.
inline Run run_runner(const std::string& args) { return run_shell(std::string(RUNNER_BINARY) + " " + args); }

}  // namespace test_util

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <vector>

namespace test_util {

/// `text` as the runner would print it: the test binary also registers a norm and an
/// activation of its own (tests/layers/test_only_layers.cpp), which lists of valid
/// names in its messages include; the golden files hold the runner's.
inline std::string without_test_only_layers(std::string text) {
  for (const std::string name : {", test_scale", ", test_softsign"})
    for (size_t at; (at = text.find(name)) != std::string::npos;) text.erase(at, name.size());
  return text;
}

/// The message of the E that `f` throws, or "(no error)".
template <class E, class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "(no error)";
}

/// A runner process with its stderr readable line by line.
class Child {
 public:
  explicit Child(const std::vector<std::string>& args) {
    int fds[2];
    if (pipe(fds) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], STDERR_FILENO);
      int devnull = ::open("/dev/null", O_WRONLY);
      dup2(devnull, STDOUT_FILENO);
      close(fds[0]);
      std::vector<char*> argv;
      std::string binary = RUNNER_BINARY;
      argv.push_back(binary.data());
      std::vector<std::string> copy = args;
      for (auto& a : copy) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(binary.c_str(), argv.data());
      _exit(127);
    }
    close(fds[1]);
    err_ = fdopen(fds[0], "r");
  }
  ~Child() {
    if (pid_ > 0 && !waited_) {
      kill(pid_, SIGKILL);
      wait();
    }
    if (err_ != nullptr) fclose(err_);
  }
  /// Reads stderr until a line contains `text`; false at end of output.
  bool wait_for(const std::string& text) {
    char line[4096];
    while (err_ != nullptr && fgets(line, sizeof line, err_) != nullptr) {
      output_ += line;
      if (std::string(line).find(text) != std::string::npos) return true;
    }
    return false;
  }
  void signal(int sig) { kill(pid_, sig); }
  /// Waits for exit; returns the exit code (128 + signal when killed).
  int wait() {
    char line[4096];
    while (err_ != nullptr && fgets(line, sizeof line, err_) != nullptr) output_ += line;
    int status = 0;
    waitpid(pid_, &status, 0);
    waited_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  const std::string& output() const { return output_; }

 private:
  pid_t pid_ = -1;
  FILE* err_ = nullptr;
  bool waited_ = false;
  std::string output_;
};

/// A fresh temporary folder, removed at scope exit.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char templ[] = "/tmp/runner-test-XXXXXX";
    path = mkdtemp(templ);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

/// Debian's chromium, installed when missing; false when it cannot be.
inline bool have_chromium() {
  if (std::system("command -v chromium >/dev/null 2>&1") == 0) return true;
  MESSAGE("installing Debian's chromium for the browser tests");
  return std::system(
             "(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) "
             ">/dev/null 2>&1 && command -v chromium >/dev/null") == 0;
}

/// Runs headless Chromium with `args`; its stdout and stderr (console messages included).
inline std::string chromium(const std::string& args, const std::string& profile) {
  // The flags keep a headless Chromium off the network on a machine that has none.
  return run_shell(
             "timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
             "--disable-background-networking --disable-component-update --disable-sync "
             "--enable-logging=stderr --v=0 --user-data-dir=" +
             profile + " " + args)
      .output;
}

/// The CIFAR-10 copy the tests use ($CIFAR10_ROOT, else ../shared/data/...).
inline std::string cifar_root() {
  const char* env = std::getenv("CIFAR10_ROOT");
  // Absolute: tests start runners from temporary folders.
  return std::filesystem::absolute(env != nullptr && *env ? env : source_path("../shared/data/cifar-10-batches-bin"))
      .lexically_normal()
      .string();
}

}  // namespace test_util
