// What training reports: per-epoch metrics, the final test report, how a run ended.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "runner/base/run_status.h"

namespace runner {

struct EpochMetrics {
  int64_t epoch = 0;                     ///< 1-based
  double train_loss = 0, train_acc = 0;  ///< accuracy in percent
  double test_loss = 0, test_acc = 0;
  std::optional<double> val_loss, val_acc;  ///< with data.validation only
  double lr = 0;                            ///< at the last step of the epoch
  double seconds = 0;
};

/// Per-class and per-sample test results of the final model.
struct TestReport {
  std::vector<int64_t> class_correct, class_total;
  std::vector<std::vector<int64_t>> confusion;             ///< [true][predicted]
  std::vector<std::pair<int64_t, int64_t>> misclassified;  ///< (test index, predicted class)
};

struct TrainResult {
  RunStatus status = RunStatus::Finished;
  std::string message;               ///< for diverged: where; for interrupted: the checkpoint
  std::vector<EpochMetrics> epochs;  ///< every epoch of the run, resumed ones included
  TestReport report;                 ///< filled when finished
};

}  // namespace runner
