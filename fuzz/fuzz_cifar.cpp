// Fuzzes the CIFAR-10 binary reader. The input is the files of one data root,
// separated by lines "%%": batches.meta.txt, data_batch_1.bin .. data_batch_5.bin,
// test_batch.bin; a missing part leaves its file missing. The first byte picks
// the train/test limits (0 = all), as data.limit_train/limit_test do.
#include <cstdint>

#include "fuzz/fuzz_util.h"
#include "runner/data.h"
#include "runner/errors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const int64_t limit_train = data[0] & 0x0f, limit_test = data[0] >> 4;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  static const char* const kFiles[] = {"batches.meta.txt", "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                       "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
  fuzz::reset_scratch();
  const auto parts = fuzz::split(rest, "\n%%\n");
  for (size_t i = 0; i < parts.size() && i < 7; ++i) fuzz::write_file(fuzz::scratch() / kFiles[i], parts[i]);
  try {
    const runner::Dataset set = runner::load_cifar10(fuzz::scratch().string(), limit_train, limit_test);
    // What a run relies on: one label per image, labels within the classes.
    if (set.train.images.size(0) != set.train.size() || set.test.images.size(0) != set.test.size()) __builtin_trap();
    if (set.train.size() > 0 && set.train.labels.max().item<int64_t>() >= 10) __builtin_trap();
  } catch (const runner::DataError&) {
  }
  return 0;
}
