#include "layers/norm_kernels.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <cstring>

namespace runner {
namespace {

// The hot loops get AVX-512 and AVX2 clones picked at load time, so one binary
// is fast on new CPUs and still runs on any x86-64.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RUNNER_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define RUNNER_SIMD_CLONES
#endif

// Each loop exists once per (ReLU or not) as a template, instantiated inside
// the cloned entry points below: a flag tested inside the loop kept GCC from
// vectorizing it (the fused ReLU ran 6-10x slower than the plain kernel).
#define RUNNER_INLINE inline __attribute__((always_inline))

// Branch-free on the bits: GCC would not vectorize `v > 0 ? v : 0` on floats, and
// the scalar branches mispredict on a ReLU's half-zero data (the fused ReLU ran
// 6-40x slower than the plain kernel).

/// max(v, 0): clears v when its sign bit is set.
RUNNER_INLINE float relu_of(float v) {
  int32_t bits = 0;
  std::memcpy(&bits, &v, sizeof bits);
  bits &= ~(bits >> 31);
  std::memcpy(&v, &bits, sizeof bits);
  return v;
}

/// value where x > 0, else 0 (a ReLU's backward).
RUNNER_INLINE float where_positive(float x, float value) {
  int32_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  bits &= -static_cast<int32_t>(x > 0.0f);
  std::memcpy(&value, &bits, sizeof bits);
  return value;
}

/// s1[c] += Σ_r a[r,c], s2[c] += Σ_r a[r,c]·b[r,c] over one image's rows, in
/// double; with kReluA/kReluB max(·, 0) of a/b is read instead (a ReLU fused in
/// front of the norm).
template <bool kReluA, bool kReluB>
RUNNER_INLINE void channel_sums_loop(const float* __restrict a, const float* __restrict b, int64_t rows, int64_t C,
                                     double* __restrict s1, double* __restrict s2) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* ar = a + r * C;
    const float* br = b + r * C;
    for (int64_t c = 0; c < C; ++c) {
      const float a0 = ar[c], b0 = br[c];
      const double av = kReluA ? relu_of(a0) : a0;
      const double bv = kReluB ? relu_of(b0) : b0;
      s1[c] += av;
      s2[c] += av * bv;
    }
  }
}

RUNNER_SIMD_CLONES void channel_sums(const float* a, const float* b, int64_t rows, int64_t C, double* s1, double* s2,
                                     bool relu_a, bool relu_b) {
  if (relu_a && relu_b)
    channel_sums_loop<true, true>(a, b, rows, C, s1, s2);
  else if (relu_b)
    channel_sums_loop<false, true>(a, b, rows, C, s1, s2);
  else
    channel_sums_loop<false, false>(a, b, rows, C, s1, s2);
}

/// out[r,c] = (v - m[c])·k2[c] + k3[c], v = x[r,c] (or max(x[r,c], 0) with kRelu), in double.
template <bool kRelu>
RUNNER_INLINE void normalize_loop(const float* __restrict x, float* __restrict out, int64_t rows, int64_t C,
                                  const double* __restrict m, const double* __restrict k2,
                                  const double* __restrict k3) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < C; ++c) {
      const float xv = x[r * C + c];
      const double v = kRelu ? relu_of(xv) : xv;
      out[r * C + c] = static_cast<float>((v - m[c]) * k2[c] + k3[c]);
    }
}

/// out[r,c] = dy[r,c]·k1[c] + (v - m[c])·k2[c] + k3[c] in double; with kRelu v =
/// max(x, 0) and out is also the ReLU's backward (0 where x <= 0).
template <bool kRelu>
RUNNER_INLINE void normalize_backward_loop(const float* __restrict dy, const float* __restrict x,
                                           float* __restrict out, int64_t rows, int64_t C,
                                           const double* __restrict k1, const double* __restrict m,
                                           const double* __restrict k2, const double* __restrict k3) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < C; ++c) {
      const float xv = x[r * C + c];
      const double v = kRelu ? relu_of(xv) : xv;
      const auto d = static_cast<float>(static_cast<double>(dy[r * C + c]) * k1[c] + (v - m[c]) * k2[c] + k3[c]);
      out[r * C + c] = kRelu ? where_positive(xv, d) : d;
    }
}

/// The combination is in double: a norm's backward subtracts nearly equal terms,
/// and rounding the coefficients to float first made LN's gradients 7x less
/// accurate than NCHW's.
RUNNER_SIMD_CLONES void channel_affine(const float* dy, const float* x, float* out, int64_t rows, int64_t C,
                                       const double* k1, const double* m, const double* k2, const double* k3,
                                       bool relu) {
  if (dy == nullptr && relu)
    normalize_loop<true>(x, out, rows, C, m, k2, k3);
  else if (dy == nullptr)
    normalize_loop<false>(x, out, rows, C, m, k2, k3);
  else if (relu)
    normalize_backward_loop<true>(dy, x, out, rows, C, k1, m, k2, k3);
  else
    normalize_backward_loop<false>(dy, x, out, rows, C, k1, m, k2, k3);
}

struct Geometry {
  int64_t N, C, rows;  ///< rows = H·W
  int64_t groups;      ///< 0: batch norm
  bool relu;           ///< the input passes through a ReLU first
  int64_t stats() const { return groups == 0 ? C : N * groups; }
  int64_t stat_of(int64_t n, int64_t c) const { return groups == 0 ? c : n * groups + c / (C / groups); }
  double count() const { return static_cast<double>(groups == 0 ? N * rows : rows * (C / groups)); }
};

Geometry geometry_of(const torch::Tensor& x, int64_t groups, bool relu) {
  return {x.size(0), x.size(1), x.size(2) * x.size(3), groups, relu};
}

/// Per (image, channel) sums of a and a·b: two [N, C] double tensors.
std::pair<torch::Tensor, torch::Tensor> image_channel_sums(const Geometry& g, const float* a, const float* b,
                                                          bool relu_a, bool relu_b) {
  auto options = torch::TensorOptions().dtype(torch::kDouble);
  torch::Tensor s1 = torch::zeros({g.N, g.C}, options), s2 = torch::zeros({g.N, g.C}, options);
  double* p1 = s1.data_ptr<double>();
  double* p2 = s2.data_ptr<double>();
  const int64_t image = g.rows * g.C;
  at::parallel_for(0, g.N, 1, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n)
      channel_sums(a + n * image, b + n * image, g.rows, g.C, p1 + n * g.C, p2 + n * g.C, relu_a, relu_b);
  });
  return {s1, s2};
}

/// out = dy·k1 + (x - m)·k2 + k3 with [N, C] double coefficients (dy optional).
void apply_per_image_channel(const Geometry& g, const float* dy, const float* x, float* out, const torch::Tensor& k1,
                             const torch::Tensor& m, const torch::Tensor& k2, const torch::Tensor& k3) {
  const int64_t image = g.rows * g.C;
  const double* pk1 = k1.defined() ? k1.data_ptr<double>() : nullptr;
  const double* pm = m.data_ptr<double>();
  const double* pk2 = k2.data_ptr<double>();
  const double* pk3 = k3.data_ptr<double>();
  at::parallel_for(0, g.N, 1, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n)
      channel_affine(dy == nullptr ? nullptr : dy + n * image, x + n * image, out + n * image, g.rows, g.C,
                     pk1 == nullptr ? nullptr : pk1 + n * g.C, pm + n * g.C, pk2 + n * g.C, pk3 + n * g.C, g.relu);
  });
}

/// [S] per stat group from [N, C] sums.
torch::Tensor sum_per_stat(const Geometry& g, const torch::Tensor& per_image_channel) {
  if (g.groups == 0) return per_image_channel.sum(0);
  return per_image_channel.view({g.N, g.groups, g.C / g.groups}).sum(2).view({-1});
}

/// [S] → [N, C]: each (image, channel) gets its stat group's value.
torch::Tensor spread(const Geometry& g, const torch::Tensor& per_stat) {
  if (g.groups == 0) return per_stat.view({1, g.C}).expand({g.N, g.C});
  return per_stat.view({g.N, g.groups, 1}).expand({g.N, g.groups, g.C / g.groups}).reshape({g.N, g.C});
}

torch::Tensor as_coefficients(const torch::Tensor& t) { return t.to(torch::kDouble).contiguous(); }

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

/// y = (v - mean)·invstd·weight + bias with v = x, or relu(x); mean and invstd
/// given per stat group (double, computed by the caller without autograd).
/// With relu only x is kept for backward: the ReLU's output is never stored.
torch::Tensor norm_forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& weight,
                           const torch::Tensor& bias, const torch::Tensor& mean, const torch::Tensor& invstd,
                           int64_t groups, bool relu) {
  const Geometry g = geometry_of(x, groups, relu);
  const torch::Tensor w = weight.to(torch::kDouble).view({1, g.C});
  const torch::Tensor scale = spread(g, invstd) * w;
  torch::Tensor y = at::empty_like(x, x.options(), at::MemoryFormat::ChannelsLast);
  apply_per_image_channel(g, nullptr, x.data_ptr<float>(), y.data_ptr<float>(), {}, as_coefficients(spread(g, mean)),
                          as_coefficients(scale), as_coefficients(bias.view({1, g.C}).expand({g.N, g.C})));
  ctx->save_for_backward({x, weight, mean, invstd});
  ctx->saved_data["groups"] = groups;
  ctx->saved_data["relu"] = relu;
  return y;
}

/// {dx, dweight, dbias}.
variable_list norm_backward(AutogradContext* ctx, const variable_list& grads) {
  const auto saved = ctx->get_saved_variables();
  const torch::Tensor& x = saved[0];
  const torch::Tensor& weight = saved[1];
  const torch::Tensor& mean = saved[2];
  const torch::Tensor& invstd = saved[3];
  const Geometry g = geometry_of(x, ctx->saved_data["groups"].toInt(), ctx->saved_data["relu"].toBool());
  const torch::Tensor dy = grads[0].contiguous(at::MemoryFormat::ChannelsLast);
  auto [sum_dy, sum_dy_x] = image_channel_sums(g, dy.data_ptr<float>(), x.data_ptr<float>(), false, g.relu);
  const torch::Tensor mean_nc = spread(g, mean), invstd_nc = spread(g, invstd);
  const torch::Tensor w = weight.to(torch::kDouble).view({1, g.C});
  const torch::Tensor sum_dy_xhat = (sum_dy_x - mean_nc * sum_dy) * invstd_nc;  // [N, C]
  const torch::Tensor grad_weight = sum_dy_xhat.sum(0).to(weight.scalar_type());
  const torch::Tensor grad_bias = sum_dy.sum(0).to(weight.scalar_type());
  // dx = invstd·(w·dy - B/K - (x - mean)·invstd²·A/K) per stat group.
  const torch::Tensor A = sum_per_stat(g, sum_dy_xhat * w) / invstd;  // Σ w·dy·(x - mean)
  const torch::Tensor B = sum_per_stat(g, sum_dy * w);
  const double K = g.count();
  const torch::Tensor k2 = -invstd.pow(3) * A / K, k3 = -invstd * B / K;
  torch::Tensor dx = at::empty_like(x, x.options(), at::MemoryFormat::ChannelsLast);
  apply_per_image_channel(g, dy.data_ptr<float>(), x.data_ptr<float>(), dx.data_ptr<float>(),
                          as_coefficients(invstd_nc * w), as_coefficients(mean_nc), as_coefficients(spread(g, k2)),
                          as_coefficients(spread(g, k3)));
  return {dx, grad_weight, grad_bias};
}

/// Pads {dx, dweight, dbias} with no gradient for the other `inputs - 3` inputs.
variable_list padded(variable_list grads, size_t inputs) {
  grads.resize(inputs);
  return grads;
}

// Two autograd nodes for one computation, so `runner bench --profile` can tell
// a BatchNorm's backward from a GroupNorm's.
struct BatchNormNhwc : torch::autograd::Function<BatchNormNhwc> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& weight,
                               const torch::Tensor& bias, const torch::Tensor& mean, const torch::Tensor& invstd,
                               bool relu) {
    return norm_forward(ctx, x, weight, bias, mean, invstd, 0, relu);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return padded(norm_backward(ctx, grads), 6);
  }
};

struct GroupNormNhwc : torch::autograd::Function<GroupNormNhwc> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& weight,
                               const torch::Tensor& bias, const torch::Tensor& mean, const torch::Tensor& invstd,
                               int64_t groups, bool relu) {
    return norm_forward(ctx, x, weight, bias, mean, invstd, groups, relu);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return padded(norm_backward(ctx, grads), 7);
  }
};

/// Mean, biased variance per stat group, in double.
std::pair<torch::Tensor, torch::Tensor> moments(const Geometry& g, const torch::Tensor& x) {
  const float* px = x.data_ptr<float>();
  auto [s1, s2] = image_channel_sums(g, px, px, g.relu, g.relu);
  const double K = g.count();
  const torch::Tensor mean = sum_per_stat(g, s1) / K;
  const torch::Tensor var = (sum_per_stat(g, s2) / K - mean * mean).clamp_min(0.0);
  return {mean, var};
}

torch::Tensor ones_if_undefined(const torch::Tensor& t, int64_t C, const torch::Tensor& x, double value) {
  return t.defined() ? t : torch::full({C}, value, x.options().memory_format(at::MemoryFormat::Contiguous));
}

}  // namespace

bool nhwc_norm_applies(const torch::Tensor& x) {
  return x.dim() == 4 && x.device().is_cpu() && x.scalar_type() == torch::kFloat && x.size(0) > 0 &&
         x.is_contiguous(at::MemoryFormat::ChannelsLast) && !x.is_contiguous();
}

torch::Tensor batch_norm_nhwc(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                              const torch::Tensor& running_mean, const torch::Tensor& running_var,
                              const torch::Tensor& num_batches_tracked, std::optional<double> momentum, double eps,
                              bool relu_input) {
  const Geometry g = geometry_of(x, 0, relu_input);
  torch::Tensor mean, var;
  {
    torch::NoGradGuard no_grad;
    std::tie(mean, var) = moments(g, x.detach());
    if (running_mean.defined()) {
      num_batches_tracked.add_(1);
      const double factor = momentum ? *momentum : 1.0 / static_cast<double>(num_batches_tracked.item<int64_t>());
      const double count = g.count();
      running_mean.mul_(1 - factor).add_(mean.to(running_mean.scalar_type()), factor);
      running_var.mul_(1 - factor).add_((var * (count / std::max(count - 1, 1.0))).to(running_var.scalar_type()),
                                        factor);
    }
  }
  return BatchNormNhwc::apply(x, ones_if_undefined(weight, g.C, x, 1.0), ones_if_undefined(bias, g.C, x, 0.0), mean,
                              (var + eps).rsqrt(), relu_input);
}

torch::Tensor group_norm_nhwc(const torch::Tensor& x, int64_t groups, const torch::Tensor& weight,
                              const torch::Tensor& bias, double eps, bool relu_input) {
  TORCH_CHECK(groups > 0 && x.size(1) % groups == 0, "group_norm_nhwc: groups must divide the channels");
  const Geometry g = geometry_of(x, groups, relu_input);
  torch::Tensor mean, var;
  {
    torch::NoGradGuard no_grad;
    std::tie(mean, var) = moments(g, x.detach());
  }
  return GroupNormNhwc::apply(x, ones_if_undefined(weight, g.C, x, 1.0), ones_if_undefined(bias, g.C, x, 0.0), mean,
                              (var + eps).rsqrt(), groups, relu_input);
}

BatchNorm2dImpl::BatchNorm2dImpl(int64_t channels, double eps, double momentum)
    : channels_(channels), eps_(eps), momentum_(momentum) {
  reset();
}

void BatchNorm2dImpl::reset() {
  weight = register_parameter("weight", torch::ones({channels_}));
  bias = register_parameter("bias", torch::zeros({channels_}));
  running_mean = register_buffer("running_mean", torch::zeros({channels_}));
  running_var = register_buffer("running_var", torch::ones({channels_}));
  num_batches_tracked = register_buffer("num_batches_tracked", torch::zeros({}, torch::kLong));
}

void BatchNorm2dImpl::pretty_print(std::ostream& stream) const {
  stream << "BatchNorm2d(" << channels_ << ", eps=" << eps_ << ", momentum=" << momentum_ << ")";
}

bool BatchNorm2dImpl::fuses_relu(const torch::Tensor& x) const { return is_training() && nhwc_norm_applies(x); }

torch::Tensor BatchNorm2dImpl::forward_after_relu(const torch::Tensor& x) {
  if (!fuses_relu(x)) return forward(torch::relu(x));
  return batch_norm_nhwc(x, weight, bias, running_mean, running_var, num_batches_tracked, momentum_, eps_, true);
}

torch::Tensor BatchNorm2dImpl::forward(const torch::Tensor& x) {
  if (is_training() && nhwc_norm_applies(x))
    return batch_norm_nhwc(x, weight, bias, running_mean, running_var, num_batches_tracked, momentum_, eps_);
  if (is_training()) {
    torch::NoGradGuard no_grad;
    num_batches_tracked.add_(1);
  }
  return torch::batch_norm(x, weight, bias, running_mean, running_var, is_training(), momentum_, eps_,
                           /*cudnn_enabled=*/true);
}

GroupNormImpl::GroupNormImpl(int64_t groups, int64_t channels, double eps)
    : groups_(groups), channels_(channels), eps_(eps) {
  reset();
}

void GroupNormImpl::reset() {
  weight = register_parameter("weight", torch::ones({channels_}));
  bias = register_parameter("bias", torch::zeros({channels_}));
}

void GroupNormImpl::pretty_print(std::ostream& stream) const {
  stream << "GroupNorm(" << groups_ << ", " << channels_ << ", eps=" << eps_ << ")";
}

bool GroupNormImpl::fuses_relu(const torch::Tensor& x) const { return nhwc_norm_applies(x); }

torch::Tensor GroupNormImpl::forward_after_relu(const torch::Tensor& x) {
  if (!fuses_relu(x)) return forward(torch::relu(x));
  return group_norm_nhwc(x, groups_, weight, bias, eps_, true);
}

torch::Tensor GroupNormImpl::forward(const torch::Tensor& x) {
  if (nhwc_norm_applies(x)) return group_norm_nhwc(x, groups_, weight, bias, eps_);
  return torch::group_norm(x, groups_, weight, bias, eps_, /*cudnn_enabled=*/true);
}

}  // namespace runner
