// runner export: a run's trained network as ONNX or PyTorch, and the proof that
// the exported model computes what the runner's does.
#pragma once
#include <cstdint>
#include <string>

#include "runner/export/export.h"

namespace runner {

struct ExportArgs {
  int64_t run_id = 0;
  std::string format = "onnx";  ///< onnx | pytorch
  std::string out;
  std::string db;
  bool raw_input = false;
  bool force = false;
  bool allow_unfinished = false;
  bool verify = false;
};

int cmd_export(const ExportArgs& args);

/// What runtimes outside this project make of an export, on the run's test images.
struct VerifyResult {
  std::string runtime;  ///< "onnxruntime 1.20.1 (onnxruntime-node)" or "PyTorch 2.6.0"
  int64_t images = 0;
  int64_t top1_differ = 0;         ///< images whose top-1 class differs from the runner's
  double max_logit_diff = 0;       ///< largest |logit - runner's logit|
  double acc = 0, runner_acc = 0;  ///< top-1 accuracy (%), the runner's single-view one
  bool ok() const { return top1_differ == 0 && max_logit_diff <= 1e-4 && acc == runner_acc; }
};

/// Runs the export at `path` (format "onnx" or "pytorch") of `run` (load_run) on the test images of the run
/// it came from and compares with the runner's own logits. ExternalError when the runtime
/// (node with onnxruntime-node, python3 with torch) is missing or fails.
VerifyResult verify_export(LoadedRun& run, const std::string& format, const std::string& path, bool raw_input);

}  // namespace runner
