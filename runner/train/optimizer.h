// Optimizers (train.optimizer) and their parameter groups.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <vector>

#include "runner/config/spec.h"

namespace runner {

/// A LibTorch optimizer and, per parameter group, the factor on the
/// schedule's learning rate (optimizer.param_groups' lr_scale).
struct Optimizer {
  std::unique_ptr<torch::optim::Optimizer> impl;
  std::vector<double> lr_scales;

  void set_lr(double lr);
  torch::optim::Optimizer* operator->() const { return impl.get(); }
};

/// The parameter class of optimizer.param_groups a parameter belongs to: a
/// module whose "weight" is 1-D is a norm's affine (norm_scales, norm_biases);
/// other weights of 2 or more dimensions are weights, other 1-D ones biases.
std::vector<std::pair<std::string, torch::Tensor>> classify_parameters(torch::nn::Module& net);

/// SGD/Adam/AdamW. Without param_groups two groups: weight decay on the
/// weights of convolutions and linear layers, none on biases and norm
/// parameters. With them one group per parameter class present, in the order
/// weights, biases, norm_scales, norm_biases, each with its lr_scale and
/// weight decay.
Optimizer make_optimizer(const OptimizerSpec& optimizer, torch::nn::Module& net);

}  // namespace runner
