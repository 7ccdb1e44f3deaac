// Training-mode BatchNorm and GroupNorm/LayerNorm kernels for channels-last
// float tensors on the CPU, with their backward.
//
// Why our own: on the CPU LibTorch's channels-last BatchNorm (1.13) sums in
// float, one value after another, which loses ~100x the precision of its NCHW
// kernel; in the seed network that grows to 4-5 % error in the first layers'
// weight gradients against a float64 reference (NCHW: 0.05 %), and its
// GroupNorm is slower in channels-last than in NCHW. These kernels sum in
// double per image and channel, so channels-last (oneDNN's fast layout for the
// convolutions) is as accurate as NCHW, and they read each tensor the fewest
// times: forward two passes, backward two.
//
// Statistics are taken over "stat groups": BatchNorm has one per channel over
// the whole batch; GroupNorm(G, C) one per image and group of C/G channels
// (G = 1 is the layer norm).
#pragma once
#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

#include "layers/registry.h"

namespace runner {

/// The copies of the kernels' hot loops this CPU can run, best first: "avx512",
/// "avx2" (x86-64 only) and "default" (baseline x86-64: SSE2; or the only one elsewhere).
std::vector<std::string> norm_kernel_isas();

/// The copy in use: $RUNNER_NORM_ISA when set (ConfigError when this CPU cannot
/// run it or there is no such copy), else the best of norm_kernel_isas().
std::string norm_kernel_isa();

/// Switches every later call to the copy `name` (tests compare them); ConfigError
/// as above.
void set_norm_kernel_isa(const std::string& name);

/// True when `x` can take these kernels: a 4-D float CPU tensor in channels-last.
bool nhwc_norm_applies(const torch::Tensor& x);

/// Batch norm over (N, H, W) per channel with batch statistics; updates the
/// running statistics like torch::batch_norm (unbiased variance, `momentum`,
/// or a cumulative average when momentum is empty). relu_input normalizes
/// relu(x) without storing it: ReLU and norm in the same two passes.
torch::Tensor batch_norm_nhwc(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                              const torch::Tensor& running_mean, const torch::Tensor& running_var,
                              const torch::Tensor& num_batches_tracked, std::optional<double> momentum, double eps,
                              bool relu_input = false);

/// GroupNorm(groups, C) with a per-channel affine; relu_input as above.
torch::Tensor group_norm_nhwc(const torch::Tensor& x, int64_t groups, const torch::Tensor& weight,
                              const torch::Tensor& bias, double eps, bool relu_input = false);

/// BatchNorm2d with torch::nn::BatchNorm2d's parameters, buffers, names and
/// initialization (so checkpoints and optimizer order are the same); training
/// takes the kernels above when they apply, everything else torch::batch_norm.
class BatchNorm2dImpl : public torch::nn::Cloneable<BatchNorm2dImpl>, public FusesPrecedingRelu {
 public:
  explicit BatchNorm2dImpl(int64_t channels, double eps = 1e-5, double momentum = 0.1);
  void reset() override;
  void pretty_print(std::ostream& stream) const override;
  torch::Tensor forward(const torch::Tensor& x);
  bool fuses_relu(const torch::Tensor& x) const override;
  torch::Tensor forward_after_relu(const torch::Tensor& x) override;

  double eps() const { return eps_; }  ///< read by the exporters (runner/export)

  torch::Tensor weight, bias, running_mean, running_var, num_batches_tracked;

 private:
  int64_t channels_;
  double eps_, momentum_;
};
TORCH_MODULE(BatchNorm2d);

/// GroupNorm(groups, C) with torch::nn::GroupNorm's parameters and
/// initialization; takes the kernels above when they apply.
class GroupNormImpl : public torch::nn::Cloneable<GroupNormImpl>, public FusesPrecedingRelu {
 public:
  GroupNormImpl(int64_t groups, int64_t channels, double eps = 1e-5);
  void reset() override;
  void pretty_print(std::ostream& stream) const override;
  torch::Tensor forward(const torch::Tensor& x);
  bool fuses_relu(const torch::Tensor& x) const override;
  torch::Tensor forward_after_relu(const torch::Tensor& x) override;

  double eps() const { return eps_; }  ///< read by the exporters (runner/export)
  int64_t groups() const { return groups_; }

  torch::Tensor weight, bias;

 private:
  int64_t groups_, channels_;
  double eps_;
};
TORCH_MODULE(GroupNorm);

}  // namespace runner
