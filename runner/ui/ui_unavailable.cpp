// A runner built with -DRUNNER_UI=OFF (no cpp-httplib) says so.
#include "runner/base/errors.h"
#include "runner/ui/ui.h"

namespace runner {

int cmd_ui(const UiArgs&) {
  throw ConfigError(
      "runner ui: this runner was built without the web view (-DRUNNER_UI=OFF; it needs "
      "libcpp-httplib-dev)");
}

}  // namespace runner
