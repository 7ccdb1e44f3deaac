// libFuzzer target: the CIFAR-10 binary reader. Input format:
// fuzz/fuzz_inputs.h, run_cifar_input.
#include "fuzz/fuzz_inputs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::run_cifar_input(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
