// Ctrl-C and SIGTERM, handled one way for every command: a flag the work polls
// (a run checkpoints and records itself, a sweep tells its children once), or,
// for a server, a thread that waits for the signal.
#pragma once
#include <thread>

namespace runner {

enum class StopMode {
  /// A run: system calls resume after the signal (file and database I/O see no EINTR); a second
  /// signal leaves at once with exit 130.
  Run,
  /// A sweep waiting on its children: the signal wakes waitpid() (no SA_RESTART) so it can pass the
  /// stop on; a second signal changes nothing (the children were told once).
  Supervisor,
};

/// Installs the SIGINT and SIGTERM handlers for `mode`; the flag keeps any stop asked before.
void install_stop_signals(StopMode mode);

/// Whether SIGINT or SIGTERM has arrived since the handlers were installed.
bool stop_requested();

/// A server's way: SIGINT and SIGTERM are blocked in the calling thread and the threads it starts
/// after this, and wait() returns in whichever thread calls it when one arrives.
class StopSignalWaiter {
 public:
  StopSignalWaiter();
  /// Blocks until SIGINT or SIGTERM (or wake()).
  void wait();
  /// Makes `waiter`'s wait() return (the work ended by itself).
  static void wake(std::thread& waiter);
};

}  // namespace runner
