#include "runner/train/device.h"

#include "runner/base/errors.h"

namespace runner {

torch::Device select_device(const std::string& device) {
  if (device == "cuda") {
    if (!torch::cuda::is_available())
      throw ConfigError("train.device is cuda but no CUDA device is available (this LibTorch build: " +
                        std::string(torch::cuda::is_available() ? "CUDA" : "CPU only") + ")");
    return torch::kCUDA;
  }
  if (device == "auto" && torch::cuda::is_available()) return torch::kCUDA;
  return torch::kCPU;
}

bool uses_channels_last(const std::string& layout, const torch::Device& device) {
  // On the CPU oneDNN's convolutions are fastest in channels-last, and our norm
  // kernels (layers/norm_kernels.h) make it as accurate as NCHW; on CUDA NCHW is
  // LibTorch's well-trodden path.
  return layout == "channels_last" || (layout == "auto" && device.is_cpu());
}

void to_channels_last(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters())
    if (p.dim() == 4) p.set_data(p.data().contiguous(at::MemoryFormat::ChannelsLast));
}

}  // namespace runner
