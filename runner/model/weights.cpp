#include "runner/model/weights.h"

#include <filesystem>

#include "runner/base/errors.h"

namespace runner {

int64_t load_eval_weights(Net& net, const std::string& checkpoint, bool ema) {
  if (!std::filesystem::is_regular_file(checkpoint))
    throw DataError(checkpoint + ": the run's checkpoint is missing (it holds the trained weights)");
  torch::serialize::InputArchive archive, model;
  torch::Tensor epoch;
  try {
    archive.load_from(checkpoint, torch::kCPU);
    archive.read("model", model);
    net->load(model);
    archive.read("epoch", epoch);
    if (ema) {
      std::vector<torch::Tensor> state = net->parameters();
      for (const auto& b : net->buffers()) state.push_back(b);
      torch::NoGradGuard no_grad;
      for (size_t i = 0; i < state.size(); ++i) {
        torch::Tensor average;
        archive.read("ema_" + std::to_string(i), average);
        if (!average.sizes().equals(state[i].sizes()))
          throw DataError(checkpoint + ": averaged weight " + std::to_string(i) +
                          " has another shape than the model's");
        state[i].copy_(average);
      }
    }
  } catch (const c10::Error& e) {
    const std::string reason = e.what();
    throw DataError(checkpoint + ": cannot read the trained weights (corrupt, or not this run's model): " +
                    reason.substr(0, reason.find('\n')));
  }
  // Training leaves weights channels-last; exporters and NCHW inference want the plain
  // layout, with standard strides: .contiguous() keeps a [C, 1, k, k] depthwise weight's
  // channels-last strides (a size-1 dim makes it "contiguous" already), and LibTorch 2.6
  // then computed NaN and wrong logits for NCHW input (Debian 13; 1.13 did not).
  torch::NoGradGuard no_grad;
  for (auto& p : net->parameters()) p.set_data(p.data().clone(at::MemoryFormat::Contiguous));
  for (auto& b : net->buffers()) b.set_data(b.data().clone(at::MemoryFormat::Contiguous));
  net->eval();
  return epoch.item<int64_t>();
}

}  // namespace runner
