// libFuzzer target: runner predict's image reader (PNG or JPEG by signature, any
// size up to 4096x4096, scaled to the model's input). Input format: fuzz/fuzz_inputs.h,
// run_image_input.
#include "fuzz/fuzz_inputs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::run_image_input(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
