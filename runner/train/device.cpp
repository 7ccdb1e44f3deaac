#include "runner/train/device.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>

#include "runner/base/errors.h"
#include "runner/model/builder.h"

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

namespace {

std::string g_onednn_refused;  ///< why guard_onednn turned oneDNN off; empty while it is on

struct Pass {
  torch::Tensor out;
  std::vector<torch::Tensor> grads;
};

Pass run_pass(Net& net, const torch::Tensor& x, const torch::Tensor& target, bool backward, bool onednn) {
  at::globalContext().setUserEnabledMkldnn(onednn);
  Pass pass;
  if (!backward) {
    torch::NoGradGuard no_grad;
    net->eval();
    pass.out = net->forward(x).contiguous();
    return pass;
  }
  // Eval mode for the gradients too: in train mode a random network's batch statistics blew float
  // rounding up to 0.5 % between the two (seed network, where oneDNN is right); the convolutions'
  // backward kernels run either way.
  net->eval();
  net->zero_grad();
  const torch::Tensor out = net->forward(x);
  torch::nn::functional::cross_entropy(out, target).backward();
  pass.out = out.detach().contiguous();
  for (const auto& p : net->parameters())
    if (p.grad().defined()) pass.grads.push_back(p.grad().contiguous().clone());
  return pass;
}

/// max |a − b| relative to max |b| (with `l2`: ‖a − b‖ relative to ‖b‖); infinite when only one
/// of them has NaN or inf.
double relative_difference(const torch::Tensor& a, const torch::Tensor& b, bool l2 = false) {
  const bool finite_a = torch::isfinite(a).all().item<bool>(), finite_b = torch::isfinite(b).all().item<bool>();
  if (finite_a != finite_b) return std::numeric_limits<double>::infinity();
  if (!finite_b) return 0;  // both overflow: the network's problem, not the kernels'
  const torch::Tensor d = (a - b).to(torch::kDouble), r = b.to(torch::kDouble);
  const double scale = l2 ? r.norm().item<double>() : r.abs().max().item<double>();
  return (l2 ? d.norm() : d.abs().max()).item<double>() / std::max(scale, 1e-12);
}

torch::Tensor flat(const std::vector<torch::Tensor>& tensors) {
  std::vector<torch::Tensor> parts;
  for (const auto& t : tensors) parts.push_back(t.reshape({-1}));
  return torch::cat(parts);
}

}  // namespace

void guard_onednn(const ModelSpec& model, int64_t batch, bool channels_last, bool backward) {
  if (!at::hasMKLDNN() || !at::globalContext().userEnabledMkldnn() || batch < 1) return;
  auto generator = at::detail::getDefaultCPUGenerator();
  const at::Tensor rng_state = generator.get_state();
  Net net = build_model(model).net;
  const auto& in = model.input;
  torch::Tensor x = torch::randn({batch, in[0], in[1], in[2]});
  const torch::Tensor target = torch::randint(model.classes, {batch}, torch::kLong);
  {
    // Random weights everywhere, frozen ones too: a whiten layer starts as zeros and would hide
    // every convolution after it.
    torch::NoGradGuard no_grad;
    for (auto& p : net->parameters())
      if (p.dim() >= 2) p.normal_(0, 1 / std::sqrt(static_cast<double>(p[0].numel())));
  }
  if (channels_last) {
    to_channels_last(*net);
    x = x.contiguous(at::MemoryFormat::ChannelsLast);
  }
  const Pass ours = run_pass(net, x, target, backward, true);
  const Pass native = run_pass(net, x, target, backward, false);
  at::globalContext().setUserEnabledMkldnn(true);
  generator.set_state(rng_state);
  // Measured between the two where oneDNN is right (LibTorch 1.13, AVX-512 and AVX2, the seed, best
  // and export test networks): under 2e-6 relative for outputs, up to 2.9e-4 for all gradients
  // together (GroupNorm's seed network); the wrong ones on Debian 13 were 0.1 to 2, or NaN.
  double worst = relative_difference(ours.out, native.out);
  std::string where = "outputs";
  if (!ours.grads.empty() && ours.grads.size() == native.grads.size()) {
    // All gradients as one vector: one tensor's alone can nearly cancel (measured in train mode: 1.2 % apart
    // in max norm on the seed network, where oneDNN is right), the whole does not.
    const double d = relative_difference(flat(ours.grads), flat(native.grads), /*l2=*/true);
    if (d > worst) worst = d, where = "gradients";
  }
  if (!(worst > 1e-2)) return;
  char text[512];
  std::snprintf(text, sizeof text,
                "oneDNN (LibTorch's CPU convolutions) computed this network's %s wrong here: %s relative to LibTorch's "
                "own kernels (LibTorch %s, batch %lld, %s). It stays off for this process; LibTorch's own kernels "
                "are slower but right (docs/platforms.md)",
                where.c_str(), std::isinf(worst) ? "NaN or inf" : (std::to_string(worst)).c_str(), TORCH_VERSION,
                static_cast<long long>(batch), channels_last ? "channels-last" : "NCHW");
  g_onednn_refused = text;
  at::globalContext().setUserEnabledMkldnn(false);
  std::cerr << "warning: " << g_onednn_refused << std::endl;
}

std::string conv_kernels() {
  if (!at::hasMKLDNN()) return "convs LibTorch's own";
  return g_onednn_refused.empty() ? "convs oneDNN" : "convs LibTorch's own (oneDNN failed its check)";
}

}  // namespace runner
