// Stage "export": a recorded run's trained network leaves the tool, as an ONNX
// model or as a plain PyTorch module with its weights. Reads the store (which run,
// its config, its results) and the model stage (the network and its weights);
// nothing else. The proof that an export equals the trained network runs outside
// this stage (runner/cli/export_command.cpp) with runtimes this project did not write.
#pragma once
#include <string>
#include <vector>

#include "runner/export/portable.h"
#include "runner/store/store.h"

namespace runner {

/// What travels with an exported model (ONNX metadata_props, the PyTorch README).
struct ExportInfo {
  int64_t run_id = 0;
  std::string run_name;
  std::string config_yaml;  ///< the resolved YAML as recorded
  std::string config_hash;
  std::vector<std::string> class_names;
  std::string test_acc;    ///< the run's recorded final test accuracy, "%.2f", or "" if none
  int64_t epochs = 0;      ///< epochs the weights were trained for
  bool raw_input = false;  ///< the model normalizes itself: input pixels in [0, 1]
};

/// The ONNX model (opset 17, IR 8), checked by onnx::checker and strict shape
/// inference, serialized. std::runtime_error naming the check that failed.
std::string onnx_model_bytes(const PortableNet& net, const ExportInfo& info);

/// model.py (class Net), weights.pt (a state dict torch.load reads) and README.md.
struct PytorchExport {
  std::string model_py;
  std::string weights_pt;
  std::string readme;
};
PytorchExport pytorch_export(const PortableNet& net, const ExportInfo& info);

/// A recorded run with its network built and its final evaluation weights loaded.
struct LoadedRun {
  RunRow row;
  ExperimentSpec spec;
  BuiltModel model;
  ExportInfo info;
};

/// Reads run `run_id` from `db`: StoreError for an unknown run; ConfigError for a
/// run that did not finish unless `allow_unfinished` (then `info.epochs` says how
/// far it got); DataError for a missing or corrupt checkpoint, or one that holds
/// another network than the run's config builds.
LoadedRun load_run(const std::string& db, int64_t run_id, bool allow_unfinished);

/// Writes the ONNX file (`format` "onnx") or the PyTorch folder ("pytorch") to
/// `out`: beside it first, then renamed, so `out` is whole or untouched. ConfigError
/// when `out` exists (unless `force`) or its folder does not exist.
void write_export(const LoadedRun& run, const std::string& format, const std::string& out, bool raw_input, bool force);

}  // namespace runner
