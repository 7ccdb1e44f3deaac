// Fuzzes stage 1: YAML text (+ --set overrides, or a grid file) → checked
// experiment. Input format (see corpus/config/):
//   E\n<experiment yaml>[\n%%\n<one --set override per line>]
//   G\n<grid yaml>            (its base: may name base.yaml, the seed BN experiment)
#include <cstdint>
#include <string>

#include "fuzz/fuzz_util.h"
#include "runner/config.h"
#include "runner/errors.h"
#include "runner/grid.h"

namespace {

const std::string& base_experiment() {
  static const std::string text = [] {
    std::ifstream in(RUNNER_SOURCE_DIR "/experiments/session8/bn.yaml");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  return text;
}

void fuzz_experiment(std::string_view input) {
  const auto parts = fuzz::split(input, "\n%%\n");
  std::vector<std::string> sets;
  if (parts.size() > 1) {
    for (auto line : fuzz::split(parts[1], "\n"))
      if (!line.empty() && sets.size() < 16) sets.emplace_back(line);
  }
  try {
    runner::parse_experiment(std::string(parts[0]), "fuzz.yaml", sets);
  } catch (const runner::ConfigError&) {
  } catch (const runner::BudgetError&) {
  }
}

void fuzz_grid(std::string_view input) {
  fuzz::reset_scratch();
  fuzz::write_file(fuzz::scratch() / "base.yaml", base_experiment());
  const auto grid_file = fuzz::scratch() / "grid.yaml";
  fuzz::write_file(grid_file, input);
  try {
    const runner::GridSpec grid = runner::load_grid(grid_file.string());
    const auto points = runner::expand_grid(grid, "fuzz", 1);
    size_t checked = 0;
    for (const auto& point : points) {
      if (++checked > 8) break;  // the rest add time, not coverage
      try {
        runner::parse_experiment(base_experiment(), "base.yaml", point.sets);
      } catch (const runner::ConfigError&) {
      } catch (const runner::BudgetError&) {
      }
    }
  } catch (const runner::ConfigError&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2 || data[1] != '\n') return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 2, size - 2);
  if (data[0] == 'E') fuzz_experiment(rest);
  if (data[0] == 'G') fuzz_grid(rest);
  return 0;
}
