#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "runner/base/atomic_file.h"
#include "runner/base/errors.h"
#include "runner/base/text.h"
#include "runner/config/config.h"
#include "runner/export/export.h"
#include "runner/model/weights.h"

namespace runner {

namespace fs = std::filesystem;

LoadedRun load_run(const std::string& db, int64_t run_id, bool allow_unfinished) {
  LoadedRun run;
  {
    const auto store = Store::open_to_look(db);
    run.row = store->run(run_id);
    if (run.row.status == RunStatus::Finished) run.info.class_names = store->test_results(run_id).class_names;
  }
  const RunRow& r = run.row;
  if (r.status != RunStatus::Finished && !allow_unfinished)
    throw ConfigError("run " + std::to_string(run_id) + " is " + status_text(r.status) + " (" +
                      std::to_string(r.epochs_done) + " of " + std::to_string(r.record.epochs) +
                      " epochs): its weights are not the finished model; --allow-unfinished exports what its "
                      "checkpoint holds");
  run.spec = parse_experiment(r.record.config_yaml,
                              r.record.experiment_file + " (as recorded in run " + std::to_string(run_id) + ")");
  run.model = build_model(run.spec.model);
  const bool ema = run.spec.train.ema > 0;
  run.info.epochs = load_eval_weights(run.model.net, r.checkpoint, ema);
  run.info.run_id = run_id;
  run.info.run_name = r.record.name;
  run.info.config_yaml = r.record.config_yaml;
  run.info.config_hash = r.record.config_hash;
  if (r.final_test_acc && r.status == RunStatus::Finished) run.info.test_acc = fixed_text(*r.final_test_acc);
  if (run.info.class_names.empty())
    for (int64_t i = 0; i < run.spec.model.classes; ++i) run.info.class_names.push_back(std::to_string(i));
  return run;
}

namespace {

void check_target(const std::string& out, bool force) {
  const fs::path target(out);
  const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(parent, ec))
    throw ConfigError("--out " + out + ": the folder " + parent.string() + " does not exist");
  if (::access(parent.c_str(), W_OK) != 0)
    throw ConfigError("--out " + out + ": the folder " + parent.string() + " is not writable");
  if (fs::exists(target, ec) && !force) throw ConfigError("--out " + out + " exists; --force replaces it");
}

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  f.close();
  if (!f) throw DataError(path.string() + ": cannot write (disk full?)");
}

}  // namespace

void write_export(const LoadedRun& run, const std::string& format, const std::string& out, bool raw_input, bool force) {
  check_target(out, force);
  ExportInfo info = run.info;
  info.raw_input = raw_input;
  Net net = run.model.net;
  const PortableNet portable = lower_network(run.spec, net);
  if (format == "onnx") {
    write_file_atomically(out, onnx_model_bytes(portable, info));
    return;
  }
  // A folder: written whole beside the target, then swapped in.
  const PytorchExport files = pytorch_export(portable, info);
  const fs::path target(out);
  const fs::path fresh = target.string() + ".partial-" + std::to_string(::getpid());
  try {
    fs::remove_all(fresh);
    fs::create_directory(fresh);
    write_file(fresh / "model.py", files.model_py);
    write_file(fresh / "weights.pt", files.weights_pt);
    write_file(fresh / "README.md", files.readme);
    const fs::path old = target.string() + ".old-" + std::to_string(::getpid());
    const bool replace = fs::exists(target);
    if (replace) fs::rename(target, old);
    fs::rename(fresh, target);
    if (replace) fs::remove_all(old);
  } catch (const fs::filesystem_error& e) {
    std::error_code ec;
    fs::remove_all(fresh, ec);
    throw DataError(out + ": cannot write the export: " + e.code().message());
  } catch (...) {
    std::error_code ec;
    fs::remove_all(fresh, ec);
    throw;
  }
}

}  // namespace runner
