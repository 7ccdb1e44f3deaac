// Optimizers (train.optimizer) and their parameter groups.
#pragma once
#include <torch/torch.h>

#include <memory>

#include "runner/config/spec.h"

namespace runner {

/// SGD/Adam/AdamW with two parameter groups: weight decay on weights of
/// convolutions and linear layers, none on biases and norm parameters.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimizerSpec& optimizer, torch::nn::Module& net);

}  // namespace runner
