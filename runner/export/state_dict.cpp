// GCC 12 at -O3 reports "potential null pointer dereference" inside LibTorch's own
// c10::Dict (ivalue_inl.h:148, IValue::toComplexDouble inlined into the dict's key
// hash: a branch a string key never takes) in any file that fills a c10::Dict. This
// file fills the one the runner writes and nothing else, so the warning is off here
// only (the pragma must precede LibTorch's headers: this file skips the stage's
// precompiled header, CMakeLists.txt).
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/pickler.h>
#include <torch/torch.h>

#include "runner/export/portable.h"

namespace runner {

std::string pickle_state_dict(const std::vector<std::pair<std::string, torch::Tensor>>& entries) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& [key, tensor] : entries) dict.insert(key, tensor);
  // What torch::pickle_save writes (torch.save's zip layout: data.pkl and one record per
  // storage), but with the dict untagged: pickle_save wraps it in
  // torch.jit._pickle.restore_type_tag, which torch.load refuses by default from PyTorch
  // 2.6 on (weights_only=True: "Unsupported global"); a plain dict of tensors it accepts.
  std::string pickle;
  torch::jit::Pickler pickler([&](const char* bytes, size_t n) { pickle.append(bytes, n); },
                              /*tensor_table=*/nullptr, /*type_renamer=*/nullptr, /*memoized_class_types=*/nullptr,
                              /*get_tensor_id=*/nullptr, /*tag_aggregates=*/false);
  pickler.protocol();
  pickler.pushIValue(c10::IValue(dict));
  pickler.stop();
  std::string out;
  caffe2::serialize::PyTorchStreamWriter writer([&](const void* bytes, size_t n) {
    out.append(static_cast<const char*>(bytes), n);
    return n;
  });
  const std::vector<at::Tensor>& storages = pickler.tensorData();
  for (size_t i = 0; i < storages.size(); ++i) {
    const torch::jit::WriteableTensorData data = torch::jit::getWriteableTensorData(storages[i]);
    writer.writeRecord("data/" + std::to_string(i), data.data(), data.sizeInBytes());
  }
  writer.writeRecord("data.pkl", pickle.data(), pickle.size());
  writer.writeEndOfFile();
  return out;
}

}  // namespace runner
