// libFuzzer target: stage 1, YAML text (+ --set overrides, or a grid file) →
// checked experiment. Input format: fuzz/fuzz_inputs.h, run_config_input.
#include "fuzz/fuzz_inputs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::run_config_input(std::string_view(reinterpret_cast<const char*>(data), size), RUNNER_SOURCE_DIR);
  return 0;
}
