#include "runner/train/optimizer.h"

namespace runner {

void Optimizer::set_lr(double lr) {
  auto& groups = impl->param_groups();
  for (size_t i = 0; i < groups.size(); ++i) groups[i].options().set_lr(lr * lr_scales.at(i));
}

std::vector<std::pair<std::string, torch::Tensor>> classify_parameters(torch::nn::Module& net) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& module : net.modules(/*include_self=*/true)) {
    const auto own = module->named_parameters(/*recurse=*/false);
    const torch::Tensor* weight = own.find("weight");
    const bool norm = weight != nullptr && weight->dim() == 1;
    for (const auto& item : own) {
      const torch::Tensor& p = item.value();
      if (norm)
        out.emplace_back(item.key() == "weight" ? "norm_scales" : "norm_biases", p);
      else
        out.emplace_back(p.dim() > 1 ? "weights" : "biases", p);
    }
  }
  return out;
}

Optimizer make_optimizer(const OptimizerSpec& o, torch::nn::Module& net) {
  Optimizer result;
  std::vector<torch::optim::OptimizerParamGroup> groups;
  auto add = [&](std::vector<torch::Tensor>& params, double weight_decay, double lr_scale) {
    if (params.empty()) return;
    const double lr = o.lr * lr_scale;
    std::unique_ptr<torch::optim::OptimizerOptions> options;
    if (o.type == "sgd")
      options = std::make_unique<torch::optim::SGDOptions>(
          torch::optim::SGDOptions(lr).momentum(o.momentum).nesterov(o.nesterov).weight_decay(weight_decay));
    else if (o.type == "adam")
      options = std::make_unique<torch::optim::AdamOptions>(torch::optim::AdamOptions(lr).weight_decay(weight_decay));
    else
      options = std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(lr).weight_decay(weight_decay));
    groups.emplace_back(params, std::move(options));
    result.lr_scales.push_back(lr_scale);
  };
  if (o.param_groups.empty()) {
    // Biases and norm affine parameters are the 1-D ones; this order is what
    // every checkpoint written before param_groups holds.
    std::vector<torch::Tensor> decay, no_decay;
    for (auto& p : net.parameters()) (p.dim() > 1 ? decay : no_decay).push_back(p);
    add(decay, o.weight_decay, 1.0);
    add(no_decay, 0.0, 1.0);
  } else {
    const auto classified = classify_parameters(net);
    for (const std::string kind : {"weights", "biases", "norm_scales", "norm_biases"}) {
      std::vector<torch::Tensor> params;
      for (const auto& [k, p] : classified)
        if (k == kind) params.push_back(p);
      const auto it = o.param_groups.find(kind);
      const ParamGroupSpec group = it == o.param_groups.end() ? ParamGroupSpec{} : it->second;
      add(params, group.weight_decay.value_or(kind == "weights" ? o.weight_decay : 0.0), group.lr_scale);
    }
  }
  if (o.type == "sgd")
    result.impl = std::make_unique<torch::optim::SGD>(groups, torch::optim::SGDOptions(o.lr));
  else if (o.type == "adam")
    result.impl = std::make_unique<torch::optim::Adam>(groups, torch::optim::AdamOptions(o.lr));
  else
    result.impl = std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(o.lr));
  return result;
}

}  // namespace runner
