// GCC 12 at -O3 reports "potential null pointer dereference" inside LibTorch's own
// c10::Dict (ivalue_inl.h:148, IValue::toComplexDouble inlined into the dict's key
// hash: a branch a string key never takes) in any file that fills a c10::Dict. This
// file fills the one the runner writes and nothing else, so the warning is off here
// only (the pragma must precede LibTorch's headers: this file skips the stage's
// precompiled header, CMakeLists.txt).
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <torch/serialize.h>
#include <torch/torch.h>

#include "runner/export/portable.h"

namespace runner {

std::string pickle_state_dict(const std::vector<std::pair<std::string, torch::Tensor>>& entries) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& [key, tensor] : entries) dict.insert(key, tensor);
  const std::vector<char> bytes = torch::pickle_save(c10::IValue(dict));
  return std::string(bytes.begin(), bytes.end());
}

}  // namespace runner
