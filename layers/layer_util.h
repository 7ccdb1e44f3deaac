// Small helpers shared by layer files: the shape checks every spatial layer repeats.
#pragma once
#include "layers/layer_def.h"

namespace runner {

/// Throws PlanError unless `in` is a [C, H, W] feature map.
inline void require_feature_map(const Shape& in, const std::string& what) {
  if (in.size() != 3)
    throw PlanError(what + " needs a [C, H, W] feature map but gets " + shape_str(in) +
                    " (a linear layer already flattened it)");
}

/// Output size of a convolution or pooling window along one axis.
inline int64_t window_out(int64_t size, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation = 1) {
  const int64_t span = dilation * (kernel - 1) + 1;
  const int64_t padded = size + 2 * padding;
  return padded < span ? 0 : (padded - span) / stride + 1;
}

/// Throws PlanError when a window shrinks the map to nothing.
inline Shape spatial_out(const Shape& in, int64_t channels, int64_t kernel, int64_t stride, int64_t padding,
                         int64_t dilation = 1) {
  const Shape out{channels, window_out(in[1], kernel, stride, padding, dilation),
                  window_out(in[2], kernel, stride, padding, dilation)};
  if (out[1] <= 0 || out[2] <= 0)
    throw PlanError("spatial size reaches zero: input " + shape_str(in) + " would give " + shape_str(out) +
                    " (kernel " + std::to_string(kernel) + ", stride " + std::to_string(stride) + ", padding " +
                    std::to_string(padding) + ", dilation " + std::to_string(dilation) + ")");
  return out;
}

inline int64_t numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

}  // namespace runner
