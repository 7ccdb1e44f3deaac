#include "runner/cli/export_command.h"

#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "runner/base/errors.h"
#include "runner/cli/command.h"
#include "runner/cli/commands.h"
#include "runner/export/export.h"
#include "runner/train/data.h"
#include "runner/train/device.h"
#include "runner/train/trainer.h"
#include "runner_version.h"

namespace runner {

namespace fs = std::filesystem;

namespace {

std::string quote(const std::string& s) {
  std::string out = "'";
  for (const char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

/// Runs a shell command; its output, or ExternalError with the output's tail.
std::string run_tool(const std::string& command, const std::string& what, const std::string& install_hint) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) throw ExternalError("cannot start " + what);
  std::string output;
  char buf[4096];
  while (const size_t n = std::fread(buf, 1, sizeof buf, pipe)) output.append(buf, n);
  const int status = ::pclose(pipe);
  if (status != 0) {
    const std::string tail = output.size() > 2000 ? output.substr(output.size() - 2000) : output;
    throw ExternalError(what + " failed (exit " + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) +
                        "): " + tail + (install_hint.empty() ? "" : "\n" + install_hint));
  }
  return output;
}

void write_floats(const fs::path& path, const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kFloat).contiguous();
  std::ofstream f(path, std::ios::binary);
  f.write(static_cast<const char*>(c.data_ptr()), static_cast<std::streamsize>(c.numel() * sizeof(float)));
  if (!f) throw DataError(path.string() + ": cannot write");
}

torch::Tensor read_floats(const fs::path& path, int64_t rows, int64_t cols) {
  torch::Tensor t = torch::empty({rows, cols}, torch::kFloat);
  std::ifstream f(path, std::ios::binary);
  f.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(t.numel() * sizeof(float)));
  if (f.gcount() != static_cast<std::streamsize>(t.numel() * sizeof(float)))
    throw ExternalError(path.string() + ": the runtime wrote fewer logits than there are images");
  return t;
}

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "runner-verify-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw DataError("cannot create a temporary folder in /tmp");
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

}  // namespace

VerifyResult verify_export(LoadedRun& run, const std::string& format, const std::string& path, bool raw_input) {
  const DataSpec& data = run.spec.data;
  const Dataset dataset = data.dataset == "folder" ? load_image_folder(data.root, 1, data.limit_test)
                                                   : load_cifar10(data.root, 1, data.limit_test);
  const torch::Tensor images = dataset.test.images, labels = dataset.test.labels;
  const int64_t n = labels.size(0), classes = run.spec.model.classes;

  // The runner's own single-view evaluation of the same weights, in the memory layout the
  // run evaluated in (channels-last on the CPU unless train.layout says nchw), with
  // convolutions a check has found right here (Debian 13's oneDNN computed some wrong).
  const bool channels_last = uses_channels_last(run.spec.train.layout, torch::kCPU);
  guard_onednn(run.spec.model, std::min(kEvalBatch, n), channels_last, false);
  torch::NoGradGuard no_grad;
  if (channels_last) to_channels_last(*run.model.net);
  const BatchTransform transform(data, torch::kCPU);
  std::vector<torch::Tensor> parts;
  for (int64_t start = 0; start < n; start += kEvalBatch) {
    torch::Tensor x = transform.eval(images.narrow(0, start, std::min(kEvalBatch, n - start)));
    if (channels_last) x = x.contiguous(at::MemoryFormat::ChannelsLast);
    parts.push_back(run.model.net->forward(x).contiguous());
  }
  const torch::Tensor ours = torch::cat(parts);

  TempDir tmp;
  const torch::Tensor input = raw_input ? images.to(torch::kFloat).div_(255.0f) : transform.eval(images);
  write_floats(tmp.path / "input.f32", input);
  const std::string shape = std::to_string(n) + " " + std::to_string(images.size(1)) + " " +
                            std::to_string(images.size(2)) + " " + std::to_string(images.size(3));
  const fs::path logits_file = tmp.path / "logits.f32";
  const std::string scripts = std::string(RUNNER_SOURCE_DIR) + "/runner/export/";
  VerifyResult result;
  if (format == "onnx") {
    const char* node_path = std::getenv("NODE_PATH");
    const std::string modules = std::string(RUNNER_SOURCE_DIR) + "/node_modules" +
                                (node_path != nullptr && *node_path != '\0' ? ":" + std::string(node_path) : "");
    result.runtime =
        run_tool("NODE_PATH=" + quote(modules) + " node " + quote(scripts + "verify_onnx.js") + " " + quote(path) +
                     " " + quote((tmp.path / "input.f32").string()) + " " + shape + " " + quote(logits_file.string()),
                 "onnxruntime (node " + scripts + "verify_onnx.js)",
                 "install it with: scripts/install_deps.sh (nodejs, npm, then `ONNXRUNTIME_NODE_INSTALL=skip "
                 "npm ci` in " RUNNER_SOURCE_DIR ")");
  } else {
    // Debian's Python, where python3-torch is, not whatever `python3` a PATH finds first
    // (a pyenv shim has no torch); $RUNNER_PYTHON picks another.
    const char* python_env = std::getenv("RUNNER_PYTHON");
    const std::string python = python_env != nullptr && *python_env != '\0' ? python_env : "/usr/bin/python3";
    result.runtime =
        run_tool(quote(python) + " " + quote(scripts + "verify_pytorch.py") + " " + quote(path) + " " +
                     quote((tmp.path / "input.f32").string()) + " " + shape + " " + quote(logits_file.string()),
                 "PyTorch (" + python + " " + scripts + "verify_pytorch.py)",
                 "install it with: scripts/install_deps.sh (python3-torch)");
  }
  // The script's last line names the runtime; a library may print notices before it.
  while (!result.runtime.empty() && (result.runtime.back() == '\n' || result.runtime.back() == '\r'))
    result.runtime.pop_back();
  result.runtime = result.runtime.substr(result.runtime.find_last_of('\n') + 1);
  const torch::Tensor theirs = read_floats(logits_file, n, classes);
  result.images = n;
  result.max_logit_diff = (theirs - ours).abs().max().item<double>();
  const torch::Tensor our_top1 = ours.argmax(1), their_top1 = theirs.argmax(1);
  result.top1_differ = our_top1.ne(their_top1).sum().item<int64_t>();
  result.runner_acc = 100.0 * our_top1.eq(labels).sum().item<double>() / static_cast<double>(n);
  result.acc = 100.0 * their_top1.eq(labels).sum().item<double>() / static_cast<double>(n);
  return result;
}

int cmd_export(const ExportArgs& args) {
  LoadedRun run = load_run(args.db, args.run_id, args.allow_unfinished);
  write_export(run, args.format, args.out, args.raw_input, args.force);
  std::cout << "run " << args.run_id << " (" << run.row.record.name << ")"
            << (run.row.status == RunStatus::Finished ? ""
                                                      : ", " + std::string(status_text(run.row.status)) +
                                                            " after epoch " + std::to_string(run.info.epochs))
            << " → " << args.out << " (" << (args.format == "onnx" ? "ONNX opset 17" : "PyTorch model.py + weights.pt")
            << ", input " << (args.raw_input ? "pixels in [0, 1]" : "normalized") << ")\n";
  if (!args.verify) return kExitOk;
  // The same loaded run: its checkpoint is read and its network built once.
  const VerifyResult v = verify_export(run, args.format, args.out, args.raw_input);
  char line[512];
  std::snprintf(line, sizeof line,
                "verify: %s on %lld test images: top-1 differs on %lld, largest logit difference %.2e (at most 1e-4), "
                "accuracy %.2f %% (the runner's single-view: %.2f %%) — %s\n",
                v.runtime.c_str(), static_cast<long long>(v.images), static_cast<long long>(v.top1_differ),
                v.max_logit_diff, v.acc, v.runner_acc, v.ok() ? "equal" : "NOT EQUAL");
  std::cout << line;
  if (!v.ok()) throw std::logic_error("the exported model differs from the runner's (a bug in the exporter)");
  return kExitOk;
}

Command export_command(CLI::App& app) {
  auto args = std::make_shared<ExportArgs>();
  ExportArgs& a = *args;
  a.db = kDefaultDb;
  CLI::App* cmd =
      add_subcommand(app, "export", "Write a run's trained network as ONNX or as a PyTorch module (docs/export.md)");
  cmd->add_option("run_id", a.run_id, "run id (see runner runs)")->required();
  cmd->add_option("--format", a.format, "onnx (one .onnx file) or pytorch (a folder)")
      ->check(CLI::IsMember({"onnx", "pytorch"}))
      ->capture_default_str();
  cmd->add_option("--out", a.out, "FILE.onnx, or the folder for pytorch")->required();
  cmd->add_flag("--raw-input", a.raw_input, "fold data.normalize into the model: it takes RGB pixels scaled to [0, 1]");
  cmd->add_flag("--force", a.force, "replace --out if it exists");
  cmd->add_flag("--allow-unfinished", a.allow_unfinished,
                "export a run that did not finish, as its checkpoint holds it (the epoch is printed)");
  cmd->add_flag("--verify", a.verify,
                "run the export with onnxruntime or PyTorch on the run's test images and compare with "
                "the runner's logits (top-1 on every image, logits within 1e-4)");
  add_db_option(cmd, a.db);
  return {cmd, [args] { return cmd_export(*args); }};
}

}  // namespace runner
