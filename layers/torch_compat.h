// What differs between the LibTorch releases the runner builds against: Debian
// 12's 1.13, Debian 13's 2.6, and 2.12+ (C++20). One place, so that layers/ and
// runner/train/ call these and carry no version #if of their own.
#pragma once

#include <torch/torch.h>
#include <torch/version.h>

#include <tuple>
#include <utility>

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

}  // namespace runner::compat
