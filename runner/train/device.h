// Where and in which memory layout a run trains (train.device, train.layout).
#pragma once
#include <torch/torch.h>

#include <string>

#include "runner/config/spec.h"

namespace runner {

/// Picks the device for train.device (auto: CUDA when available).
torch::Device select_device(const std::string& device);

/// Whether train.layout puts images, activations and convolution weights in channels-last on `device`.
bool uses_channels_last(const std::string& layout, const torch::Device& device);

/// LibTorch hands CPU convolutions to oneDNN, and some builds compute some shapes wrong: Debian 13's
/// LibTorch 2.6, linked to the system's oneDNN 3.7.2, gave errors as large as the outputs (and NaN) on
/// AVX-512 for convolutions whose channel counts are not multiples of 16 (docs/platforms.md). This runs
/// a freshly built copy of the network on random data (`batch` images; forward, and backward with
/// `backward`) with oneDNN and with LibTorch's own kernels. Where they disagree it turns oneDNN off for
/// the rest of the process and says so on stderr. The random number generator is left as it was, so a
/// run draws what it drew before; nothing happens off the CPU, without oneDNN or once it is off.
void guard_onednn(const ModelSpec& model, int64_t batch, bool channels_last, bool backward);

/// Which kernels run the convolutions: "convs oneDNN", or LibTorch's own after guard_onednn refused oneDNN.
std::string conv_kernels();

/// Puts the module's 4-D parameters (convolution weights) in channels-last, in place.
void to_channels_last(torch::nn::Module& module);

}  // namespace runner
