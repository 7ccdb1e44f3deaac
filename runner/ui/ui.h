// `runner ui`: a local, read-only web view of a results database while runs
// and searches write it. Pages are the report's views (runs, a run, compare,
// a sweep or search), rendered per request from a fresh read-only connection.
#pragma once
#include <string>

namespace runner {

struct UiArgs {
  std::string db;
  std::string host = "127.0.0.1";
  int port = 8765;  ///< 0: any free port (printed)
};

/// Serves until SIGINT or SIGTERM, then returns 0. ConfigError when the
/// address cannot be bound; ConfigError in a runner built without the ui.
int cmd_ui(const UiArgs& args);

}  // namespace runner
