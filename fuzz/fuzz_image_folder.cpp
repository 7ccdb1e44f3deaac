// Fuzzes the image-folder reader (PNG/JPEG decoding via stb, class folders,
// size checks). The input is up to 8 files separated by lines "%%"; each part's
// first byte places it: bit 0 train/test, bits 1-2 the class (a..d), bit 3 the
// extension (.png/.jpg).
#include <cstdint>

#include "fuzz/fuzz_util.h"
#include "runner/data.h"
#include "runner/errors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  fuzz::reset_scratch();
  int index = 0;
  for (auto part : fuzz::split(input, "\n%%\n")) {
    if (part.empty() || index >= 8) continue;
    const auto where = static_cast<uint8_t>(part[0]);
    const std::string split = (where & 1) ? "test" : "train";
    const std::string cls(1, static_cast<char>('a' + ((where >> 1) & 3)));
    const std::string ext = (where & 8) ? ".jpg" : ".png";
    fuzz::write_file(fuzz::scratch() / split / cls / (std::to_string(index++) + ext), part.substr(1));
  }
  try {
    const runner::Dataset set = runner::load_image_folder(fuzz::scratch().string());
    if (set.train.images.size(0) != set.train.size()) __builtin_trap();
    if (set.train.images.dim() != 4 || set.test.images.dim() != 4) __builtin_trap();
  } catch (const runner::DataError&) {
  }
  return 0;
}
