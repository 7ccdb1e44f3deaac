// runner predict: a run's trained network on image files.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace runner {

struct PredictArgs {
  int64_t run_id = 0;
  std::vector<std::string> images;
  std::string db;
  bool json = false;
  bool allow_unfinished = false;
};

/// The top three classes with probabilities for each PNG or JPEG, scaled to the
/// model's input (fit_image), from the run's final evaluation weights.
int cmd_predict(const PredictArgs& args);

}  // namespace runner
