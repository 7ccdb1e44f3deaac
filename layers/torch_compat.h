// What differs between the LibTorch releases the runner builds against: Debian
// 12's 1.13, Debian 13's 2.6, and 2.12+ (C++20). One place, so that layers/ and
// runner/train/ call these and carry no version #if of their own.
#pragma once

#include <torch/torch.h>
#include <torch/version.h>

#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

// The oldest release whose API this header was written against.
static_assert(TORCH_VERSION_MAJOR > 1 || (TORCH_VERSION_MAJOR == 1 && TORCH_VERSION_MINOR >= 13),
              "runner needs LibTorch 1.13 or newer");

namespace runner::compat {

/// Eigenvalues (ascending) and eigenvectors of a symmetric matrix. Not
/// torch::linalg::eigh: <torch/linalg.h> is not in Debian 13's libtorch-dev 2.6;
/// the ATen function behind it is in every release since 1.9.
inline std::tuple<torch::Tensor, torch::Tensor> eigh(const torch::Tensor& symmetric) {
  return at::linalg_eigh(symmetric, "U");
}

/// Fn::apply(args...) for a custom autograd Function. LibTorch 2.x's apply
/// reserves a std::vector<bool> of its inputs; inlined into our code at -O3, GCC 13
/// and 14 report a bounds error inside vector<bool>'s reallocation that cannot
/// happen (GCC bug 114758, vector<bool> -Warray-bounds/-Wstringop-overflow false
/// positives). GCC 12 and LibTorch 1.13 do not. flatten inlines apply here, so
/// the pragmas, scoped to this call, cover it (an out-of-line apply is outside them).
template <class Fn, class... Args>
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((flatten))
#endif
auto apply_function(Args&&... args) {
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 13
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Warray-bounds"
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#endif
  return Fn::apply(std::forward<Args>(args)...);
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 13
#pragma GCC diagnostic pop
#endif
}

/// The key of a parameter's entry in an optimizer's state: a string of its
/// TensorImpl's address up to 1.13, the address itself from 2.0.
inline auto optimizer_state_key(const torch::Tensor& parameter) {
#if TORCH_VERSION_MAJOR >= 2
  return static_cast<void*>(parameter.unsafeGetTensorImpl());
#else
  return c10::guts::to_string(parameter.unsafeGetTensorImpl());
#endif
}

/// Why an optimizer's loaded state does not fit its parameters (a momentum or
/// moment tensor of another shape than its parameter), or "". Checkpoints keep
/// LibTorch's own optimizer format, and its keys changed with 2.0: under 2.6 a
/// 1.13 checkpoint's state loads without complaint but gives parameters each
/// other's momentum, and the first step fails on the shapes.
inline std::string optimizer_state_mismatch(torch::optim::Optimizer& optimizer) {
  for (auto& group : optimizer.param_groups())
    for (const auto& parameter : group.params()) {
      const auto found = optimizer.state().find(optimizer_state_key(parameter));
      if (found == optimizer.state().end()) continue;
      std::vector<torch::Tensor> tensors;
      const torch::optim::OptimizerParamState* state = found->second.get();
      if (const auto* sgd = dynamic_cast<const torch::optim::SGDParamState*>(state))
        tensors = {sgd->momentum_buffer()};
      else if (const auto* adam = dynamic_cast<const torch::optim::AdamParamState*>(state))
        tensors = {adam->exp_avg(), adam->exp_avg_sq(), adam->max_exp_avg_sq()};
      else if (const auto* adamw = dynamic_cast<const torch::optim::AdamWParamState*>(state))
        tensors = {adamw->exp_avg(), adamw->exp_avg_sq(), adamw->max_exp_avg_sq()};
      for (const auto& t : tensors)
        if (t.defined() && t.sizes() != parameter.sizes()) {
          std::ostringstream out;
          out << "optimizer state of shape " << t.sizes() << " for a parameter of shape " << parameter.sizes();
          return out.str();
        }
    }
  return "";
}

}  // namespace runner::compat
