#include "layers/norm_kernels.h"

#include <ATen/Parallel.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "layers/torch_compat.h"
#include "runner/base/errors.h"

namespace runner {
namespace {

// The hot loops exist once per instruction set (AVX-512, AVX2, baseline
// x86-64), so one binary is fast on new CPUs and still runs on any x86-64. The
// copy is chosen at run time, not by the loader (target_clones), so that a test
// or CI can run the AVX2 and baseline copies on an AVX-512 machine too
// (RUNNER_NORM_ISA, set_norm_kernel_isa).
#if defined(__x86_64__) && defined(__GNUC__)
#define RUNNER_NORM_X86 1
#define RUNNER_TARGET(isa) __attribute__((target(isa)))
#else
#define RUNNER_NORM_X86 0
#define RUNNER_TARGET(isa)
#endif

// Each loop exists once per (ReLU or not) as a template, instantiated inside
// the cloned entry points below, and the ReLU is branch-free on the float's
// bits: with a flag tested inside the loop, or `v > 0 ? v : 0` on floats, GCC did
// not vectorize, and the scalar branches mispredicted on a ReLU's half-zero data
// (the fused ReLU ran 6-40x slower than the plain kernel).
#define RUNNER_INLINE inline __attribute__((always_inline))

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

RUNNER_INLINE void channel_sums_body(const float* a, const float* b, int64_t rows, int64_t C, double* s1, double* s2,
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
RUNNER_INLINE void normalize_backward_loop(const float* __restrict dy, const float* __restrict x, float* __restrict out,
                                           int64_t rows, int64_t C, const double* __restrict k1,
                                           const double* __restrict m, const double* __restrict k2,
                                           const double* __restrict k3) {
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
RUNNER_INLINE void channel_affine_body(const float* dy, const float* x, float* out, int64_t rows, int64_t C,
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

using ChannelSums = void (*)(const float*, const float*, int64_t, int64_t, double*, double*, bool, bool);
using ChannelAffine = void (*)(const float*, const float*, float*, int64_t, int64_t, const double*, const double*,
                               const double*, const double*, bool);

/// One compiled copy of both hot loops.
struct KernelIsa {
  const char* name;
  bool (*supported)();
  ChannelSums sums;
  ChannelAffine affine;
};

#define RUNNER_KERNEL_COPY(suffix, target)                                                                             \
  RUNNER_TARGET(target)                                                                                                \
  void channel_sums_##suffix(const float* a, const float* b, int64_t rows, int64_t C, double* s1, double* s2,          \
                             bool relu_a, bool relu_b) {                                                               \
    channel_sums_body(a, b, rows, C, s1, s2, relu_a, relu_b);                                                          \
  }                                                                                                                    \
  RUNNER_TARGET(target)                                                                                                \
  void channel_affine_##suffix(const float* dy, const float* x, float* out, int64_t rows, int64_t C, const double* k1, \
                               const double* m, const double* k2, const double* k3, bool relu) {                       \
    channel_affine_body(dy, x, out, rows, C, k1, m, k2, k3, relu);                                                     \
  }

void channel_sums_default(const float* a, const float* b, int64_t rows, int64_t C, double* s1, double* s2, bool relu_a,
                          bool relu_b) {
  channel_sums_body(a, b, rows, C, s1, s2, relu_a, relu_b);
}
void channel_affine_default(const float* dy, const float* x, float* out, int64_t rows, int64_t C, const double* k1,
                            const double* m, const double* k2, const double* k3, bool relu) {
  channel_affine_body(dy, x, out, rows, C, k1, m, k2, k3, relu);
}

#if RUNNER_NORM_X86
RUNNER_KERNEL_COPY(avx2, "avx2")
RUNNER_KERNEL_COPY(avx512, "avx512f")
#endif

/// Every copy this binary has, best first.
const std::vector<KernelIsa>& kernel_isas() {
  static const std::vector<KernelIsa> isas = {
#if RUNNER_NORM_X86
    {"avx512", [] { return __builtin_cpu_supports("avx512f") != 0; }, channel_sums_avx512, channel_affine_avx512},
    {"avx2", [] { return __builtin_cpu_supports("avx2") != 0; }, channel_sums_avx2, channel_affine_avx2},
#endif
    {"default", [] { return true; }, channel_sums_default, channel_affine_default},
  };
  return isas;
}

const KernelIsa* find_isa(const std::string& name) {
  for (const auto& isa : kernel_isas())
    if (name == isa.name) return &isa;
  return nullptr;
}

std::string supported_names() {
  std::string names;
  for (const auto& isa : kernel_isas())
    if (isa.supported()) names += (names.empty() ? "" : ", ") + std::string(isa.name);
  return names;
}

/// The copy called `name`; ConfigError when this binary has none or this CPU cannot run it.
const KernelIsa* choose_isa(const std::string& name, const std::string& context) {
  const KernelIsa* isa = find_isa(name);
  if (isa == nullptr || !isa->supported())
    throw ConfigError(context + name + ": " +
                      (isa == nullptr ? "no such copy of the norm kernels" : "this CPU cannot run it") +
                      "; this CPU runs: " + supported_names());
  return isa;
}

/// The copy in use: RUNNER_NORM_ISA when set, else the best this CPU runs.
std::atomic<const KernelIsa*>& active_isa() {
  static std::atomic<const KernelIsa*> active{[] {
    const char* env = std::getenv("RUNNER_NORM_ISA");
    if (env != nullptr && *env != '\0') return choose_isa(env, "RUNNER_NORM_ISA=");
    for (const auto& isa : kernel_isas())
      if (isa.supported()) return &isa;
    return &kernel_isas().back();
  }()};
  return active;
}

void channel_sums(const float* a, const float* b, int64_t rows, int64_t C, double* s1, double* s2, bool relu_a,
                  bool relu_b) {
  active_isa().load(std::memory_order_relaxed)->sums(a, b, rows, C, s1, s2, relu_a, relu_b);
}

void channel_affine(const float* dy, const float* x, float* out, int64_t rows, int64_t C, const double* k1,
                    const double* m, const double* k2, const double* k3, bool relu) {
  active_isa().load(std::memory_order_relaxed)->affine(dy, x, out, rows, C, k1, m, k2, k3, relu);
}

struct Geometry {
  int64_t N, C, rows;  ///< rows = H·W
  bool relu;           ///< the input passes through a ReLU first
};

Geometry geometry_of(const torch::Tensor& x, bool relu) { return {x.size(0), x.size(1), x.size(2) * x.size(3), relu}; }

// Statistics and coefficients are small arrays of doubles in plain loops, not
// ~30 tiny ATen ops per layer and step.
using Doubles = std::vector<double>;

/// A float [C] tensor's values (weights, biases) as doubles.
Doubles doubles_of(const torch::Tensor& t) {
  TORCH_CHECK(t.scalar_type() == torch::kFloat, "norm kernels: float parameters expected");
  const torch::Tensor c = t.contiguous();
  return Doubles(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

torch::Tensor float_tensor_of(const Doubles& values) {
  torch::Tensor t = torch::empty({static_cast<int64_t>(values.size())}, torch::kFloat);
  std::copy(values.begin(), values.end(), t.data_ptr<float>());
  return t;
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

/// What a norm's backward needs from its forward: both kernels keep the same.
void save_for_norm_backward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& weight,
                            const Doubles& mean, const Doubles& invstd, bool relu) {
  ctx->save_for_backward({x, weight});
  ctx->saved_data["mean"] = mean;
  ctx->saved_data["invstd"] = invstd;
  ctx->saved_data["relu"] = relu;
}

struct NormBackwardInputs {
  torch::Tensor x, dy;  ///< dy in channels-last
  Doubles w, mean, invstd;
  Geometry g;
};

NormBackwardInputs norm_backward_inputs(AutogradContext* ctx, const variable_list& grads) {
  const auto saved = ctx->get_saved_variables();
  return {saved[0],
          grads[0].contiguous(at::MemoryFormat::ChannelsLast),
          doubles_of(saved[1]),
          ctx->saved_data["mean"].toDoubleVector(),
          ctx->saved_data["invstd"].toDoubleVector(),
          geometry_of(saved[0], ctx->saved_data["relu"].toBool())};
}

/// Pads {dx, dweight, dbias} with no gradient for the other `inputs - 3` inputs.
variable_list padded(variable_list grads, size_t inputs) {
  grads.resize(inputs);
  return grads;
}

// ---- BatchNorm: statistics per channel over the whole batch, so each pass sweeps all images ----

/// Per channel Σ a and Σ a·b over the batch, in double (per-image partial sums, then added).
std::pair<Doubles, Doubles> batch_channel_sums(const Geometry& g, const float* a, const float* b, bool relu_a,
                                               bool relu_b) {
  const auto C = static_cast<size_t>(g.C);
  Doubles p1(static_cast<size_t>(g.N) * C, 0.0), p2(p1.size(), 0.0);
  const int64_t image = g.rows * g.C;
  at::parallel_for(0, g.N, 1, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n)
      channel_sums(a + n * image, b + n * image, g.rows, g.C, p1.data() + n * g.C, p2.data() + n * g.C, relu_a, relu_b);
  });
  Doubles s1(C, 0.0), s2(C, 0.0);
  for (size_t i = 0; i < p1.size(); ++i) s1[i % C] += p1[i], s2[i % C] += p2[i];
  return {std::move(s1), std::move(s2)};
}

/// out = dy·k1 + (x - m)·k2 + k3 with the same [C] coefficients for every image (dy and k1 optional).
void apply_per_channel(const Geometry& g, const float* dy, const float* x, float* out, const Doubles& k1,
                       const Doubles& m, const Doubles& k2, const Doubles& k3) {
  const int64_t image = g.rows * g.C;
  at::parallel_for(0, g.N, 1, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n)
      channel_affine(dy == nullptr ? nullptr : dy + n * image, x + n * image, out + n * image, g.rows, g.C,
                     k1.empty() ? nullptr : k1.data(), m.data(), k2.data(), k3.data(), g.relu);
  });
}

struct Moments {
  Doubles mean, var;  ///< per channel; var biased
};

Moments batch_moments(const Geometry& g, const float* x) {
  Moments m;
  std::tie(m.mean, m.var) = batch_channel_sums(g, x, x, g.relu, g.relu);
  const auto K = static_cast<double>(g.N * g.rows);
  for (size_t c = 0; c < m.mean.size(); ++c) {
    m.mean[c] /= K;
    m.var[c] = std::max(m.var[c] / K - m.mean[c] * m.mean[c], 0.0);
  }
  return m;
}

/// y = (v - mean)·invstd·weight + bias with v = x, or relu(x); batch statistics
/// computed by the caller (it also updates the running ones). With relu only x
/// is kept for backward: the ReLU's output is never stored. Its own autograd
/// node so that `runner bench --profile` can tell it from a GroupNorm.
struct BatchNormNhwc : torch::autograd::Function<BatchNormNhwc> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& weight,
                               const torch::Tensor& bias, const Doubles& mean, const Doubles& invstd, bool relu) {
    const Geometry g = geometry_of(x, relu);
    const Doubles w = doubles_of(weight);
    Doubles scale(w.size());
    for (size_t c = 0; c < w.size(); ++c) scale[c] = invstd[c] * w[c];
    torch::Tensor y = at::empty_like(x, x.options(), at::MemoryFormat::ChannelsLast);
    apply_per_channel(g, nullptr, x.data_ptr<float>(), y.data_ptr<float>(), {}, mean, scale, doubles_of(bias));
    save_for_norm_backward(ctx, x, weight, mean, invstd, relu);
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto [x, dy, w, mean, invstd, g] = norm_backward_inputs(ctx, grads);
    const auto [sum_dy, sum_dy_x] = batch_channel_sums(g, dy.data_ptr<float>(), x.data_ptr<float>(), false, g.relu);
    // dx = invstd·(w·dy - Σdy/K - (v - mean)·invstd²·Σdy·(v - mean)/K) per channel.
    const auto C = static_cast<size_t>(g.C);
    const auto K = static_cast<double>(g.N * g.rows);
    Doubles grad_w(C), k1(C), k2(C), k3(C);
    for (size_t c = 0; c < C; ++c) {
      const double dy_xmu = sum_dy_x[c] - mean[c] * sum_dy[c];
      grad_w[c] = dy_xmu * invstd[c];
      k1[c] = w[c] * invstd[c];
      k2[c] = -w[c] * invstd[c] * invstd[c] * invstd[c] * dy_xmu / K;
      k3[c] = -w[c] * invstd[c] * sum_dy[c] / K;
    }
    torch::Tensor dx = at::empty_like(x, x.options(), at::MemoryFormat::ChannelsLast);
    apply_per_channel(g, dy.data_ptr<float>(), x.data_ptr<float>(), dx.data_ptr<float>(), k1, mean, k2, k3);
    return padded({dx, float_tensor_of(grad_w), float_tensor_of(sum_dy)}, 6);
  }
};

/// GroupNorm's statistics are per image, so it works image by image: the
/// second pass over an image (100 KB for 32x28x28) reads it from the core's
/// cache, not from memory. Forward and backward each read memory once less per
/// tensor than the batch-wide two-pass form BatchNorm needs.
struct GroupNormNhwc : torch::autograd::Function<GroupNormNhwc> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& weight,
                               const torch::Tensor& bias, int64_t groups, double eps, bool relu) {
    const Geometry g = geometry_of(x, relu);
    const Doubles w = doubles_of(weight), b = doubles_of(bias);
    const int64_t per_group = g.C / groups, image = g.rows * g.C;
    const auto K = static_cast<double>(g.rows * per_group);
    Doubles mean(static_cast<size_t>(g.N * groups)), invstd(mean.size());
    torch::Tensor y = at::empty_like(x, x.options(), at::MemoryFormat::ChannelsLast);
    const float* px = x.data_ptr<float>();
    float* py = y.data_ptr<float>();
    at::parallel_for(0, g.N, 1, [&](int64_t begin, int64_t end) {
      const auto C = static_cast<size_t>(g.C);
      Doubles s1(C), s2(C), m(C), k2(C), k3(C);
      for (int64_t n = begin; n < end; ++n) {
        std::fill(s1.begin(), s1.end(), 0.0);
        std::fill(s2.begin(), s2.end(), 0.0);
        channel_sums(px + n * image, px + n * image, g.rows, g.C, s1.data(), s2.data(), relu, relu);
        for (int64_t gi = 0; gi < groups; ++gi) {
          double sum = 0, sum_sq = 0;
          for (int64_t c = gi * per_group; c < (gi + 1) * per_group; ++c) sum += s1[c], sum_sq += s2[c];
          const double mu = sum / K, var = std::max(sum_sq / K - mu * mu, 0.0), inv = 1.0 / std::sqrt(var + eps);
          mean[static_cast<size_t>(n * groups + gi)] = mu;
          invstd[static_cast<size_t>(n * groups + gi)] = inv;
          for (int64_t c = gi * per_group; c < (gi + 1) * per_group; ++c) m[c] = mu, k2[c] = inv * w[c], k3[c] = b[c];
        }
        channel_affine(nullptr, px + n * image, py + n * image, g.rows, g.C, nullptr, m.data(), k2.data(), k3.data(),
                       relu);
      }
    });
    save_for_norm_backward(ctx, x, weight, mean, invstd, relu);
    ctx->saved_data["groups"] = groups;
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const NormBackwardInputs in = norm_backward_inputs(ctx, grads);
    const torch::Tensor &x = in.x, &dy = in.dy;
    const Doubles &w = in.w, &mean = in.mean, &invstd = in.invstd;
    const Geometry& g = in.g;
    const int64_t groups = ctx->saved_data["groups"].toInt();
    const int64_t per_group = g.C / groups, image = g.rows * g.C;
    const auto K = static_cast<double>(g.rows * per_group);
    // Per (image, channel) contributions to the parameter gradients, summed over images at the end.
    Doubles dweight(static_cast<size_t>(g.N * g.C)), dbias(dweight.size());
    torch::Tensor dx = at::empty_like(x, x.options(), at::MemoryFormat::ChannelsLast);
    const float* px = x.data_ptr<float>();
    const float* pdy = dy.data_ptr<float>();
    float* pdx = dx.data_ptr<float>();
    at::parallel_for(0, g.N, 1, [&](int64_t begin, int64_t end) {
      const auto C = static_cast<size_t>(g.C);
      Doubles s1(C), s2(C), k1(C), m(C), k2(C), k3(C);
      for (int64_t n = begin; n < end; ++n) {
        std::fill(s1.begin(), s1.end(), 0.0);
        std::fill(s2.begin(), s2.end(), 0.0);
        channel_sums(pdy + n * image, px + n * image, g.rows, g.C, s1.data(), s2.data(), false, g.relu);
        for (int64_t gi = 0; gi < groups; ++gi) {
          const double mu = mean[static_cast<size_t>(n * groups + gi)];
          const double inv = invstd[static_cast<size_t>(n * groups + gi)];
          double A = 0, B = 0;  // Σ w·dy·(v - mean), Σ w·dy over the group
          for (int64_t c = gi * per_group; c < (gi + 1) * per_group; ++c) {
            const double dy_xmu = s2[c] - mu * s1[c];
            dweight[static_cast<size_t>(n * g.C + c)] = dy_xmu * inv;
            dbias[static_cast<size_t>(n * g.C + c)] = s1[c];
            A += w[c] * dy_xmu;
            B += w[c] * s1[c];
          }
          for (int64_t c = gi * per_group; c < (gi + 1) * per_group; ++c)
            k1[c] = w[c] * inv, m[c] = mu, k2[c] = -inv * inv * inv * A / K, k3[c] = -inv * B / K;
        }
        channel_affine(pdy + n * image, px + n * image, pdx + n * image, g.rows, g.C, k1.data(), m.data(), k2.data(),
                       k3.data(), g.relu);
      }
    });
    const auto C = static_cast<size_t>(g.C);
    Doubles grad_w(C, 0.0), grad_b(C, 0.0);
    for (size_t i = 0; i < dweight.size(); ++i) grad_w[i % C] += dweight[i], grad_b[i % C] += dbias[i];
    return padded({dx, float_tensor_of(grad_w), float_tensor_of(grad_b)}, 7);
  }
};

Doubles inverse_std(const Doubles& var, double eps) {
  Doubles out(var.size());
  for (size_t s = 0; s < var.size(); ++s) out[s] = 1.0 / std::sqrt(var[s] + eps);
  return out;
}

torch::Tensor ones_if_undefined(const torch::Tensor& t, int64_t C, double value) {
  return t.defined() ? t : torch::full({C}, value, torch::kFloat);
}

}  // namespace

std::vector<std::string> norm_kernel_isas() {
  std::vector<std::string> names;
  for (const auto& isa : kernel_isas())
    if (isa.supported()) names.emplace_back(isa.name);
  return names;
}

std::string norm_kernel_isa() { return active_isa().load()->name; }

void set_norm_kernel_isa(const std::string& name) { active_isa().store(choose_isa(name, "norm kernel ISA ")); }

bool nhwc_norm_applies(const torch::Tensor& x) {
  return x.dim() == 4 && x.device().is_cpu() && x.scalar_type() == torch::kFloat && x.size(0) > 0 &&
         x.is_contiguous(at::MemoryFormat::ChannelsLast) && !x.is_contiguous();
}

torch::Tensor batch_norm_nhwc(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                              const torch::Tensor& running_mean, const torch::Tensor& running_var,
                              const torch::Tensor& num_batches_tracked, std::optional<double> momentum, double eps,
                              bool relu_input) {
  TORCH_CHECK(nhwc_norm_applies(x), "batch_norm_nhwc: a 4-D float CPU tensor in channels-last expected");
  active_isa();  // a bad RUNNER_NORM_ISA throws here, not inside a parallel loop
  const Geometry g = geometry_of(x, relu_input);
  const Moments m = batch_moments(g, x.data_ptr<float>());
  if (running_mean.defined()) {
    torch::NoGradGuard no_grad;
    num_batches_tracked.add_(1);
    const double factor = momentum ? *momentum : 1.0 / static_cast<double>(num_batches_tracked.item<int64_t>());
    const auto count = static_cast<double>(g.N * g.rows);
    const double unbiased = count / std::max(count - 1, 1.0);
    TORCH_CHECK(running_mean.scalar_type() == torch::kFloat && running_mean.is_contiguous() &&
                    running_var.scalar_type() == torch::kFloat && running_var.is_contiguous(),
                "norm kernels: float running statistics expected");
    float* rm = running_mean.data_ptr<float>();
    float* rv = running_var.data_ptr<float>();
    for (size_t c = 0; c < m.mean.size(); ++c) {
      rm[c] = static_cast<float>((1 - factor) * rm[c] + factor * m.mean[c]);
      rv[c] = static_cast<float>((1 - factor) * rv[c] + factor * m.var[c] * unbiased);
    }
  }
  return compat::apply_function<BatchNormNhwc>(x, ones_if_undefined(weight, g.C, 1.0),
                                               ones_if_undefined(bias, g.C, 0.0), m.mean, inverse_std(m.var, eps),
                                               relu_input);
}

torch::Tensor group_norm_nhwc(const torch::Tensor& x, int64_t groups, const torch::Tensor& weight,
                              const torch::Tensor& bias, double eps, bool relu_input) {
  TORCH_CHECK(nhwc_norm_applies(x), "group_norm_nhwc: a 4-D float CPU tensor in channels-last expected");
  TORCH_CHECK(groups > 0 && x.size(1) % groups == 0, "group_norm_nhwc: groups must divide the channels");
  active_isa();
  return compat::apply_function<GroupNormNhwc>(x, ones_if_undefined(weight, x.size(1), 1.0),
                                               ones_if_undefined(bias, x.size(1), 0.0), groups, eps, relu_input);
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
