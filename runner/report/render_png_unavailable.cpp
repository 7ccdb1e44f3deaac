// svg_to_png in a runner built with -DRUNNER_PNG=OFF (no librsvg): SVG output still works.
#include "runner/base/errors.h"
#include "runner/report/report.h"

namespace runner {

std::vector<unsigned char> svg_to_png(const std::string&) {
  throw ConfigError(
      "this runner was built without PNG rendering (cmake -DRUNNER_PNG=OFF, no librsvg): write the picture as "
      "SVG (--out FILE.svg), or build with -DRUNNER_PNG=ON");
}

}  // namespace runner
