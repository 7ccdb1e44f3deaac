// The module behind `conv: {standardize: true}` (layers/conv.cpp), declared
// here so tests can reach its standardized weight.
#pragma once
#include <torch/torch.h>

namespace runner {

/// A 2-D convolution whose weight is standardized per output channel (mean 0,
/// variance 1 over in/groups × k × k) on every forward pass; the stored weight
/// stays the trainable parameter, so the count equals Conv2d's.
class StandardizedConv2dImpl : public torch::nn::Module {
 public:
  StandardizedConv2dImpl(const torch::nn::Conv2dOptions& options, int64_t stride, int64_t padding, int64_t dilation,
                         int64_t groups);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor standardized_weight() const;

  torch::Tensor weight, bias;

 private:
  int64_t stride_, padding_, dilation_, groups_;
};
TORCH_MODULE(StandardizedConv2d);

}  // namespace runner
