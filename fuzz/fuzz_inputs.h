// What each fuzz target does with one input, shared with the test suite,
// which replays every fuzz/corpus/*/regress_* input through the same code
// (under `make test-asan` with the sanitizers). A runner error (ConfigError,
// DataError, ...) is the expected answer to bad input; anything else escaping
// is a bug and propagates, so libFuzzer reports it as a crash.
#pragma once
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include "fuzz/fuzz_util.h"
#include "runner/base/errors.h"
#include "runner/config/config.h"
#include "runner/config/grid.h"
#include "runner/train/data.h"

namespace fuzz {

/// The seed BN experiment, the base a fuzzed grid may name as base.yaml.
inline const std::string& base_experiment(const std::string& source_dir) {
  static const std::string text = [&] {
    std::ifstream in(source_dir + "/experiments/session8/bn.yaml");
    std::stringstream text_stream;
    text_stream << in.rdbuf();
    return text_stream.str();
  }();
  return text;
}

/// Config stage. Input: "E\n<experiment yaml>[\n%%\n<one --set per line>]"
/// or "G\n<grid yaml>" (its base: may name base.yaml).
inline void run_config_input(std::string_view input, const std::string& source_dir) {
  if (input.size() < 2 || input[1] != '\n') return;
  const char mode = input[0];
  input.remove_prefix(2);
  if (mode == 'E') {
    const auto parts = split(input, "\n%%\n");
    std::vector<std::string> sets;
    if (parts.size() > 1)
      for (auto line : split(parts[1], "\n"))
        if (!line.empty() && sets.size() < 16) sets.emplace_back(line);
    try {
      runner::parse_experiment(std::string(parts[0]), "fuzz.yaml", sets);
    } catch (const runner::ConfigError&) {
    } catch (const runner::BudgetError&) {
    }
  } else if (mode == 'G') {
    reset_scratch();
    write_file(scratch() / "base.yaml", base_experiment(source_dir));
    const auto grid_file = scratch() / "grid.yaml";
    write_file(grid_file, input);
    try {
      const runner::GridSpec grid = runner::load_grid(grid_file.string());
      const auto points = runner::expand_grid(grid, "fuzz", 1);
      size_t checked = 0;
      for (const auto& point : points) {
        if (++checked > 8) break;  // the rest add time, not coverage
        try {
          runner::parse_experiment(base_experiment(source_dir), "base.yaml", point.sets);
        } catch (const runner::ConfigError&) {
        } catch (const runner::BudgetError&) {
        }
      }
    } catch (const runner::ConfigError&) {
    }
  }
}

/// CIFAR-10 reader. Input: one byte of limits (train: low 4 bits, test: high 4;
/// 0 = all), then the files of a data root separated by lines "%%":
/// batches.meta.txt, data_batch_1.bin .. data_batch_5.bin, test_batch.bin.
inline void run_cifar_input(std::string_view input) {
  if (input.empty()) return;
  const auto limits = static_cast<uint8_t>(input[0]);
  input.remove_prefix(1);
  static const char* const kFiles[] = {"batches.meta.txt", "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                       "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
  reset_scratch();
  const auto parts = split(input, "\n%%\n");
  for (size_t i = 0; i < parts.size() && i < 7; ++i) write_file(scratch() / kFiles[i], parts[i]);
  try {
    const runner::Dataset set = runner::load_cifar10(scratch().string(), limits & 0x0f, limits >> 4);
    // What a run relies on: one label per image, labels within the classes.
    if (set.train.images.size(0) != set.train.size() || set.test.images.size(0) != set.test.size()) __builtin_trap();
    if (set.train.size() > 0 && set.train.labels.max().item<int64_t>() >= 10) __builtin_trap();
  } catch (const runner::DataError&) {
  }
}

/// Image-folder reader. Input: up to 8 files separated by lines "%%"; each
/// part's first byte places it: bit 0 train/test, bits 1-2 the class (a..d),
/// bit 3 the extension (.png/.jpg).
inline void run_image_folder_input(std::string_view input) {
  reset_scratch();
  int index = 0;
  for (auto part : split(input, "\n%%\n")) {
    if (part.empty() || index >= 8) continue;
    const auto where = static_cast<uint8_t>(part[0]);
    const std::string split_name = (where & 1) ? "test" : "train";
    const std::string cls(1, static_cast<char>('a' + ((where >> 1) & 3)));
    const std::string ext = (where & 8) ? ".jpg" : ".png";
    write_file(scratch() / split_name / cls / (std::to_string(index++) + ext), part.substr(1));
  }
  try {
    const runner::Dataset set = runner::load_image_folder(scratch().string());
    if (set.train.images.size(0) != set.train.size()) __builtin_trap();
    if (set.train.images.dim() != 4 || set.test.images.dim() != 4) __builtin_trap();
  } catch (const runner::DataError&) {
  }
}

/// runner predict's image reader. Input: the bytes of one file, read as predict
/// reads a PNG or JPEG of any size, then scaled to the seed network's 32x32.
inline void run_image_input(std::string_view input) {
  const std::vector<uint8_t> bytes(input.begin(), input.end());
  try {
    const torch::Tensor image = runner::fit_image(runner::decode_image(bytes, "fuzz.img"), 32, 32);
    // What predict relies on: three channels of the model's size.
    if (image.dim() != 3 || image.size(0) != 3 || image.size(1) != 32 || image.size(2) != 32)
      throw std::logic_error("fit_image did not give [3, 32, 32]");
  } catch (const runner::DataError&) {
  }
}

}  // namespace fuzz
