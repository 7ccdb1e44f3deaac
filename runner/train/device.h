// Where and in which memory layout a run trains (train.device, train.layout).
#pragma once
#include <torch/torch.h>

#include <string>

namespace runner {

/// Picks the device for train.device (auto: CUDA when available).
torch::Device select_device(const std::string& device);

/// Whether train.layout puts images, activations and convolution weights in channels-last on `device`.
bool uses_channels_last(const std::string& layout, const torch::Device& device);

/// Puts the module's 4-D parameters (convolution weights) in channels-last, in place.
void to_channels_last(torch::nn::Module& module);

}  // namespace runner
