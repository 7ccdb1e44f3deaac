#include "runner/train/optimizer.h"

namespace runner {

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimizerSpec& o, torch::nn::Module& net) {
  // Biases and norm affine parameters are the 1-D ones.
  std::vector<torch::Tensor> decay, no_decay;
  for (auto& p : net.parameters()) (p.dim() > 1 ? decay : no_decay).push_back(p);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  auto add = [&](std::vector<torch::Tensor>& params, double weight_decay) {
    if (params.empty()) return;
    std::unique_ptr<torch::optim::OptimizerOptions> options;
    if (o.type == "sgd")
      options = std::make_unique<torch::optim::SGDOptions>(
          torch::optim::SGDOptions(o.lr).momentum(o.momentum).nesterov(o.nesterov).weight_decay(weight_decay));
    else if (o.type == "adam")
      options = std::make_unique<torch::optim::AdamOptions>(torch::optim::AdamOptions(o.lr).weight_decay(weight_decay));
    else
      options =
          std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(o.lr).weight_decay(weight_decay));
    groups.emplace_back(params, std::move(options));
  };
  add(decay, o.weight_decay);
  add(no_decay, 0.0);
  if (o.type == "sgd")
    return std::make_unique<torch::optim::SGD>(groups, torch::optim::SGDOptions(o.lr));
  if (o.type == "adam") return std::make_unique<torch::optim::Adam>(groups, torch::optim::AdamOptions(o.lr));
  return std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(o.lr));
}

}  // namespace runner
