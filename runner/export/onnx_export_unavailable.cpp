// A runner built with -DRUNNER_ONNX=OFF (no libonnx, e.g. a GPU build from carried
// packages) says so; the PyTorch export still works.
#include "runner/base/errors.h"
#include "runner/export/export.h"

namespace runner {

std::string onnx_model_bytes(const PortableNet&, const ExportInfo&) {
  throw ConfigError(
      "runner export --format onnx: this runner was built without ONNX (-DRUNNER_ONNX=OFF; it needs "
      "libonnx-dev); --format pytorch works");
}

}  // namespace runner
