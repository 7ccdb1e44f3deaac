// runner bench: steady-state throughput, and where a step's time goes per
// layer type under LibTorch's profiler.
#include "runner/train/trainer.h"

#include <ATen/CPUGeneratorImpl.h>  // used by name below: not left to whatever torch.h pulls in
#include <torch/csrc/autograd/profiler_legacy.h>

#include <algorithm>
#include <map>

#include "runner/train/progress.h"

namespace runner {

std::vector<Trainer::ProfileRow> Trainer::profile(int64_t steps, int64_t batch) {
  namespace prof = torch::autograd::profiler;
  net_->train();
  torch::Generator generator = torch::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(spec_.train.seed));
  const int64_t n = train_labels_.size(0);
  auto run_steps = [&](int64_t count) {
    for (int64_t s = 0; s < count; ++s)
      train_step(torch::randint(0, n, {std::min(batch, n)}, generator, torch::kLong).to(device_),
                 spec_.train.optimizer.lr, generator);
  };
  run_steps(2);  // warm caches outside the profile
  prof::enableProfilerLegacy(torch::profiler::impl::ProfilerConfig(torch::profiler::impl::ProfilerState::CPU));
  run_steps(steps);
  const prof::thread_event_lists lists = prof::disableProfilerLegacy();

  // Backward nodes named after the forward op, mapped to the layer they belong to.
  static const std::vector<std::pair<std::string, std::string>> kBackward{
      {"Convolution", "layer: Conv2d"},
      {"NativeBatchNorm", "layer: BatchNorm2d"},
      {"NativeGroupNorm", "layer: GroupNorm"},
      {"NativeLayerNorm", "layer: LayerNorm"},
      {"Relu", "layer: ReLU"},
      {"MaxPool2D", "layer: MaxPool2d"},
      {"AvgPool2D", "layer: AvgPool2d"},
      {"Mean", "layer: AdaptiveAvgPool2d"},
      {"Add", "layer: Residual"},
      {"Addmm", "layer: Linear"},
      {"NllLoss", "loss"},
      {"LogSoftmax", "loss"},
      {"BatchNormNhwc", "layer: BatchNorm2d"},
      {"GroupNormNhwc", "layer: GroupNorm"}};  // layers/norm_kernels.cpp
  const std::string engine = "autograd::engine::evaluate_function: ";
  std::map<std::string, ProfileRow> parts;
  // Layer scopes nest (a residual's body): each layer gets its own time, less its
  // nested layers'. Other scopes count only at the top level.
  struct Frame {
    const prof::LegacyEvent* start;
    bool layer;
    double nested_layer_ms;
  };
  for (const auto& events : lists) {
    std::vector<Frame> open;
    for (const auto& e : events) {
      if (e.kind() == prof::EventKind::PushRange) {
        open.push_back({&e, std::string(e.name()).rfind("layer: ", 0) == 0, 0.0});
      } else if (e.kind() == prof::EventKind::PopRange && !open.empty()) {
        const Frame frame = open.back();
        open.pop_back();
        const double ms = frame.start->cpuElapsedUs(e) / 1000.0 / static_cast<double>(steps);
        const std::string name = frame.start->name();
        if (frame.layer) {
          parts[name].part = name;
          parts[name].forward_ms += ms - frame.nested_layer_ms;
          for (auto it = open.rbegin(); it != open.rend(); ++it)
            if (it->layer) {
              it->nested_layer_ms += ms;
              break;
            }
        } else if (open.empty() && name.rfind(engine, 0) == 0) {
          const std::string node = name.substr(engine.size());
          std::string part = "other backward: " + node;
          // Custom functions' nodes are named torch::autograd::CppNode<runner::(anonymous namespace)::Name>.
          std::string bare = node;
          if (bare.rfind("torch::autograd::CppNode<", 0) == 0 && bare.back() == '>') {
            bare = bare.substr(bare.rfind(':') + 1);
            bare.pop_back();
          }
          for (const auto& [prefix, layer] : kBackward)
            if (bare.rfind(prefix, 0) == 0) part = layer;
          parts[part].part = part;
          parts[part].backward_ms += ms;
        } else if (open.empty()) {
          parts[name].part = name;
          parts[name].forward_ms += ms;
        }
      }
    }
  }
  std::vector<ProfileRow> rows;
  for (auto& [name, row] : parts) rows.push_back(row);
  std::sort(rows.begin(), rows.end(), [](const ProfileRow& a, const ProfileRow& b) {
    return a.forward_ms + a.backward_ms > b.forward_ms + b.backward_ms;
  });
  return rows;
}

Trainer::Throughput Trainer::benchmark(int64_t warmup, int64_t steps, int64_t batch) {
  net_->train();
  torch::Generator generator = torch::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(spec_.train.seed));
  const int64_t n = train_labels_.size(0);
  auto run_steps = [&](int64_t count) {
    for (int64_t s = 0; s < count; ++s) {
      const torch::Tensor index = torch::randint(0, n, {std::min(batch, n)}, generator, torch::kLong).to(device_);
      train_step(index, spec_.train.optimizer.lr, generator);
    }
  };
  run_steps(warmup);  // allocator, oneDNN primitive caches, thread pools
  Throughput t;
  auto start = Clock::now();
  run_steps(steps);
  t.train_images_per_s = static_cast<double>(steps * std::min(batch, n)) / seconds_since(start);
  evaluate(test_images_, test_labels_);  // warm
  start = Clock::now();
  evaluate(test_images_, test_labels_);
  t.eval_images_per_s = static_cast<double>(test_labels_.size(0)) / seconds_since(start);
  return t;
}

}  // namespace runner
