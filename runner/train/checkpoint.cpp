// The checkpoint format: one LibTorch archive with the model, the optimizer,
// where in the run it stopped (epoch, step, running sums), a fingerprint of the
// data and the EMA or lookahead weights; written atomically.
#include "runner/train/trainer.h"

#include <filesystem>
#include <sstream>

#include "layers/torch_compat.h"
#include "runner/base/atomic_file.h"
#include "runner/base/errors.h"

namespace runner {

void Trainer::save_checkpoint(const std::string& path, int64_t epoch, int64_t step, double loss_sum, int64_t correct,
                              int64_t seen) const {
  torch::serialize::OutputArchive archive, model, optimizer;
  net_->save(model);
  optimizer_->save(optimizer);
  archive.write("model", model);
  archive.write("optimizer", optimizer);
  archive.write("epoch", torch::tensor(epoch));
  archive.write("step", torch::tensor(step));
  archive.write("loss_sum", torch::tensor(loss_sum, torch::kDouble));
  archive.write("correct", torch::tensor(correct));
  archive.write("seen", torch::tensor(seen));
  archive.write("data_fingerprint", torch::tensor(static_cast<int64_t>(data_fingerprint(data_))));
  // Which LibTorch wrote it: its optimizer format is LibTorch's own and changed with 2.0.
  archive.write("torch_version", c10::IValue(std::string(TORCH_VERSION)));
  if (!ema_.empty()) {
    archive.write("ema_updates", torch::tensor(ema_updates_));
    for (size_t i = 0; i < ema_.size(); ++i) archive.write("ema_" + std::to_string(i), ema_[i]);
  }
  for (size_t i = 0; i < lookahead_.size(); ++i) archive.write("lookahead_" + std::to_string(i), lookahead_[i]);
  // Serialized in memory, then written by us: LibTorch's file writer throws from
  // a destructor when the disk fills, which aborts the process.
  std::ostringstream buffer;
  archive.save_to(buffer);
  write_file_atomically(path, buffer.str());
}

int64_t checkpoint_epoch(const std::string& path) {
  torch::serialize::InputArchive archive;
  archive.load_from(path);
  torch::Tensor epoch;
  archive.read("epoch", epoch);
  return epoch.item<int64_t>();
}

void Trainer::load_checkpoint(const std::string& path, int64_t& epoch, int64_t& step, double& loss_sum,
                              int64_t& correct, int64_t& seen) {
  if (!std::filesystem::exists(path)) throw DataError(path + ": checkpoint missing; the run cannot be resumed");
  torch::serialize::InputArchive archive, model, optimizer;
  // A fresh tensor per key: InputArchive::read writes into a defined tensor in place.
  auto scalar = [&](const char* key) {
    torch::Tensor t;
    archive.read(key, t);
    return t;
  };
  torch::Tensor fingerprint;
  std::string written_by = "LibTorch 1.13 or older";  // checkpoints before the key was written
  std::string state_mismatch;
  try {
    archive.load_from(path, device_);
    archive.read("model", model);
    archive.read("optimizer", optimizer);
    net_->load(model);
    apply_layout();  // loading replaces the parameters' storage with the saved layout
    c10::IValue version;
    if (archive.try_read("torch_version", version) && version.isString())
      written_by = "LibTorch " + version.toStringRef();
    optimizer_->load(optimizer);
    state_mismatch = compat::optimizer_state_mismatch(*optimizer_.impl);
    epoch = scalar("epoch").item<int64_t>();
    step = scalar("step").item<int64_t>();
    loss_sum = scalar("loss_sum").item<double>();
    correct = scalar("correct").item<int64_t>();
    seen = scalar("seen").item<int64_t>();
    archive.try_read("data_fingerprint", fingerprint);  // absent in checkpoints of runner 0.1.0
    if (!ema_.empty()) {
      ema_updates_ = scalar("ema_updates").item<int64_t>();
      for (size_t i = 0; i < ema_.size(); ++i) {
        torch::Tensor t;
        archive.read("ema_" + std::to_string(i), t);
        ema_[i] = t.to(device_);
      }
    }
    for (size_t i = 0; i < lookahead_.size(); ++i) {
      torch::Tensor t;
      archive.read("lookahead_" + std::to_string(i), t);
      lookahead_[i] = t.to(device_);
    }
  } catch (const c10::Error& e) {
    std::string reason = e.what();
    throw DataError(path + ": cannot read the checkpoint (corrupt, or from another model; written by " + written_by +
                    ", read by LibTorch " + TORCH_VERSION + "): " + reason.substr(0, reason.find('\n')));
  }
  if (!state_mismatch.empty())
    throw DataError(path + ": cannot resume: the checkpoint was written by " + written_by +
                    " and this runner uses LibTorch " + TORCH_VERSION + ", whose optimizer state format differs (" +
                    state_mismatch +
                    "); resume it with a runner built against the LibTorch that wrote it (Debian 12: 1.13, Debian 13: "
                    "2.6), or start the run again");
  // Resuming on other data would silently mix two datasets in one run.
  if (fingerprint.defined() && static_cast<uint64_t>(fingerprint.item<int64_t>()) != data_fingerprint(data_))
    throw DataError(path + ": the training or test data changed since this checkpoint was written (data.root " +
                    spec_.data.root + "); restore the data the run started with, or start a new run");
}

}  // namespace runner
