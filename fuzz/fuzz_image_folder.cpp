// libFuzzer target: the image-folder reader (PNG via libpng, JPEG via
// libjpeg-turbo, class folders, size checks). Input format: fuzz/fuzz_inputs.h,
// run_image_folder_input.
#include "fuzz/fuzz_inputs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::run_image_folder_input(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
