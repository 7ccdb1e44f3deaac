#include "runner/base/stop_signal.h"

#include <pthread.h>
#include <signal.h>

#include <csignal>
#include <cstdlib>

#include "runner/base/errors.h"

namespace runner {

namespace {

volatile std::sig_atomic_t g_stop = 0;

extern "C" void on_stop_signal_run(int) {
  if (g_stop != 0) std::_Exit(kExitInterrupted);  // a second Ctrl-C: leave now
  g_stop = 1;
}

extern "C" void on_stop_signal_supervisor(int) { g_stop = 1; }

sigset_t stop_set() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

}  // namespace

void install_stop_signals(StopMode mode) {
  struct sigaction action {};
  action.sa_handler = mode == StopMode::Run ? on_stop_signal_run : on_stop_signal_supervisor;
  action.sa_flags = mode == StopMode::Run ? SA_RESTART : 0;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

bool stop_requested() { return g_stop != 0; }

StopSignalWaiter::StopSignalWaiter() {
  const sigset_t set = stop_set();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

void StopSignalWaiter::wait() {
  const sigset_t set = stop_set();
  int sig = 0;
  sigwait(&set, &sig);
}

void StopSignalWaiter::wake(std::thread& waiter) { pthread_kill(waiter.native_handle(), SIGTERM); }

}  // namespace runner
