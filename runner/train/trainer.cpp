#include "runner/trainer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <thread>

#include <ATen/CPUGeneratorImpl.h>  // used by name below: not left to whatever torch.h pulls in
#include <ATen/record_function.h>
#include <torch/csrc/autograd/profiler_legacy.h>

#include <algorithm>
#include <map>

#include "runner/errors.h"

namespace runner {

namespace {

/// Writes `bytes` to `path` through a temporary file, fsync and rename: a kill
/// never leaves half a file, and a failed write (disk full) keeps the old one.
void write_file_atomically(const std::string& path, const std::string& bytes) {
  namespace fs = std::filesystem;
  const std::string tmp = path + ".tmp";
  auto fail = [&](const std::string& reason) {
    ::unlink(tmp.c_str());
    std::error_code ec;
    const fs::space_info space = fs::space(fs::path(path).parent_path(), ec);
    throw StoreError("cannot write the checkpoint " + path + ": " + reason +
                     (ec ? std::string() : "; " + std::to_string(space.available / 1024) + " KiB free there") +
                     " (the previous checkpoint is kept)");
  };
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  if (ec) fail(ec.message());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : ENOSPC;
      ::close(fd);
      fail(std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    fail(std::strerror(err));
  }
  if (::close(fd) != 0) fail(std::strerror(errno));
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail(std::strerror(errno));
}

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// splitmix64: independent, reproducible seeds per (run seed, epoch, step).
uint64_t mix_seed(uint64_t seed, uint64_t epoch, uint64_t step) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ULL + epoch * 0xBF58476D1CE4E5B9ULL + step * 0x94D049BB133111EBULL + 1;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return (z ^ (z >> 31)) & 0x7FFFFFFFFFFFULL;
}

std::string format_duration(double seconds) {
  const auto s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

/// A bar on a terminal, one plain line per epoch elsewhere (logs, CI).
class Progress {
 public:
  Progress(int64_t epochs, int64_t steps) : epochs_(epochs), steps_(steps), tty_(isatty(STDERR_FILENO) != 0) {}

  void step(int64_t epoch, int64_t step, double images_per_s, double loss, double epoch_seconds) {
    if (!tty_) return;
    const auto now = Clock::now();
    if (step + 1 < steps_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    const int width = 24;
    const auto filled = static_cast<int>(width * (step + 1) / steps_);
    const double eta = epoch_seconds / static_cast<double>(step + 1) * static_cast<double>(steps_ - step - 1);
    std::fprintf(stderr, "\repoch %lld/%lld [%s%s] %lld/%lld  %.0f img/s  loss %.4f  ETA %s   ",
                 static_cast<long long>(epoch), static_cast<long long>(epochs_), std::string(filled, '#').c_str(),
                 std::string(width - filled, '.').c_str(), static_cast<long long>(step + 1),
                 static_cast<long long>(steps_), images_per_s, loss, format_duration(eta).c_str());
    std::fflush(stderr);
  }

  void epoch_done(const EpochMetrics& m, double run_eta) {
    if (tty_) std::fprintf(stderr, "\r%120s\r", "");
    char val[64] = "";
    if (m.val_acc) std::snprintf(val, sizeof val, "  val loss %.4f acc %.2f%%", *m.val_loss, *m.val_acc);
    std::fprintf(stderr,
                 "epoch %lld/%lld  train loss %.4f acc %.2f%%%s  test loss %.4f acc %.2f%%  lr %.5f  %.1fs  ETA %s\n",
                 static_cast<long long>(m.epoch), static_cast<long long>(epochs_), m.train_loss, m.train_acc, val,
                 m.test_loss, m.test_acc, m.lr, m.seconds, format_duration(run_eta).c_str());
    std::fflush(stderr);
  }

 private:
  int64_t epochs_, steps_;
  bool tty_;
  Clock::time_point last_draw_{};
};

double cos_anneal(double start, double end, double pct) { return end + (start - end) / 2.0 * (std::cos(M_PI * pct) + 1); }

}  // namespace

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimizerSpec& o, torch::nn::Module& net) {
  // Biases and norm affine parameters are the 1-D ones.
  std::vector<torch::Tensor> decay, no_decay;
  for (auto& p : net.parameters()) (p.dim() > 1 ? decay : no_decay).push_back(p);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  auto add = [&](std::vector<torch::Tensor>& params, double weight_decay) {
    if (params.empty()) return;
    std::unique_ptr<torch::optim::OptimizerOptions> options;
    if (o.type == "sgd")
      options = std::make_unique<torch::optim::SGDOptions>(
          torch::optim::SGDOptions(o.lr).momentum(o.momentum).nesterov(o.nesterov).weight_decay(weight_decay));
    else if (o.type == "adam")
      options = std::make_unique<torch::optim::AdamOptions>(torch::optim::AdamOptions(o.lr).weight_decay(weight_decay));
    else
      options =
          std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(o.lr).weight_decay(weight_decay));
    groups.emplace_back(params, std::move(options));
  };
  add(decay, o.weight_decay);
  add(no_decay, 0.0);
  if (o.type == "sgd")
    return std::make_unique<torch::optim::SGD>(groups, torch::optim::SGDOptions(o.lr));
  if (o.type == "adam") return std::make_unique<torch::optim::Adam>(groups, torch::optim::AdamOptions(o.lr));
  return std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(o.lr));
}

void seed_everything(int64_t seed) { torch::manual_seed(static_cast<uint64_t>(seed)); }

double learning_rate_at(const TrainSpec& train, int64_t step, int64_t steps_per_epoch) {
  const ScheduleSpec& s = train.schedule;
  const double lr = train.optimizer.lr;
  const auto total = static_cast<double>(train.epochs * steps_per_epoch);
  const auto t = static_cast<double>(step);
  if (s.type == "constant") return lr;
  if (s.type == "step") return lr * std::pow(s.gamma, static_cast<double>((step / steps_per_epoch) / s.step_size));
  if (s.type == "cosine") return cos_anneal(lr, 0.0, t / total);
  // onecycle as PyTorch's OneCycleLR with its defaults (div_factor 25,
  // final_div_factor 1e4, cosine annealing); momentum is not cycled.
  const double initial = s.max_lr / 25.0, minimum = initial / 1e4;
  const double warm_end = s.pct_start * total - 1.0;
  if (t <= warm_end) return cos_anneal(initial, s.max_lr, warm_end > 0 ? t / warm_end : 1.0);
  const double rest = total - 1.0 - warm_end;
  return cos_anneal(s.max_lr, minimum, rest > 0 ? (t - warm_end) / rest : 1.0);
}

torch::Device select_device(const std::string& device) {
  if (device == "cuda") {
    if (!torch::cuda::is_available())
      throw ConfigError("train.device is cuda but no CUDA device is available (this LibTorch build: " +
                        std::string(torch::cuda::is_available() ? "CUDA" : "CPU only") + ")");
    return torch::kCUDA;
  }
  if (device == "auto" && torch::cuda::is_available()) return torch::kCUDA;
  return torch::kCPU;
}

Trainer::Trainer(const ExperimentSpec& spec, Net net, const Dataset& data, torch::Device device)
    : spec_(spec),
      net_(std::move(net)),
      data_(data),
      device_(device),
      transform_(spec.data, device),
      channels_last_(uses_channels_last(spec.train.layout, device)) {
  net_->to(device_);
  apply_layout();
  optimizer_ = make_optimizer(spec_.train.optimizer, *net_);
  // The whole set lives on the device; batches are index_select'ed from it.
  train_images_ = data_.train.images.to(device_);
  train_labels_ = data_.train.labels.to(device_);
  test_images_ = data_.test.images.to(device_);
  test_labels_ = data_.test.labels.to(device_);
  if (data_.validation.images.defined()) {
    val_images_ = data_.validation.images.to(device_);
    val_labels_ = data_.validation.labels.to(device_);
  }
  if (spec_.train.ema > 0) {
    // Handles stay valid: the optimizer and checkpoint loading update them in place.
    model_state_ = net_->parameters();
    for (const auto& b : net_->buffers()) model_state_.push_back(b);
    for (const auto& t : model_state_) ema_.push_back(t.detach().clone());
  }
}

bool uses_channels_last(const std::string& layout, const torch::Device& device) {
  // On the CPU oneDNN's convolutions are fastest in channels-last, and our norm
  // kernels (layers/norm_kernels.h) make it as accurate as NCHW; on CUDA NCHW is
  // LibTorch's well-trodden path.
  return layout == "channels_last" || (layout == "auto" && device.is_cpu());
}

void to_channels_last(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters())
    if (p.dim() == 4) p.set_data(p.data().contiguous(at::MemoryFormat::ChannelsLast));
}

void Trainer::apply_layout() {
  if (channels_last_) to_channels_last(*net_);
}

torch::Tensor Trainer::in_layout(const torch::Tensor& images) const {
  return channels_last_ ? images.contiguous(at::MemoryFormat::ChannelsLast) : images;
}

void Trainer::update_ema() {
  if (ema_.empty()) return;
  torch::NoGradGuard no_grad;
  ++ema_updates_;
  const auto n = static_cast<double>(ema_updates_);
  const double decay = std::min(spec_.train.ema, (1.0 + n) / (10.0 + n));
  for (size_t i = 0; i < ema_.size(); ++i) {
    if (ema_[i].is_floating_point())
      ema_[i].mul_(decay).add_(model_state_[i].detach(), 1.0 - decay);
    else
      ema_[i].copy_(model_state_[i]);  // counters such as num_batches_tracked
  }
}

void Trainer::swap_ema() {
  if (ema_.empty()) return;
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < ema_.size(); ++i) {
    torch::Tensor held = model_state_[i].detach().clone();
    model_state_[i].detach().copy_(ema_[i]);
    ema_[i] = held;
  }
}

torch::Tensor training_loss(const torch::Tensor& logits, const torch::Tensor& labels, double label_smoothing) {
  return torch::nn::functional::cross_entropy(
      logits, labels, torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(label_smoothing));
}

torch::Tensor eval_log_probs(const std::function<torch::Tensor(const torch::Tensor&)>& forward, const torch::Tensor& x,
                             const std::string& tta) {
  const torch::Tensor log_probs = torch::log_softmax(forward(x), 1);
  if (tta != "flip") return log_probs;
  // The mean of the probabilities of the image and its mirror, in log space.
  const torch::Tensor flipped = torch::log_softmax(forward(x.flip({3})), 1);
  return torch::logsumexp(torch::stack({log_probs, flipped}), 0) - std::log(2.0);
}

Trainer::EvalResult Trainer::evaluate(const torch::Tensor& images, const torch::Tensor& labels) {
  // With train.ema the averaged weights are the model that is evaluated.
  struct EmaScope {
    Trainer& t;
    explicit EmaScope(Trainer& trainer) : t(trainer) { t.swap_ema(); }
    ~EmaScope() { t.swap_ema(); }
  } ema_scope(*this);
  torch::NoGradGuard no_grad;
  net_->eval();
  const int64_t n = labels.size(0), batch = 1000;
  double loss_sum = 0;
  std::vector<torch::Tensor> predictions;
  for (int64_t start = 0; start < n; start += batch) {
    const int64_t len = std::min(batch, n - start);
    const torch::Tensor x = in_layout(transform_.eval(images.narrow(0, start, len)));
    const torch::Tensor y = labels.narrow(0, start, len);
    const torch::Tensor log_probs =
        eval_log_probs([&](const torch::Tensor& in) { return net_->forward(in); }, x, spec_.train.tta);
    loss_sum += torch::nll_loss(log_probs, y, {}, at::Reduction::Sum).item<double>();
    predictions.push_back(log_probs.argmax(1));
  }
  EvalResult result;
  result.predictions = torch::cat(predictions).cpu();
  result.loss = loss_sum / static_cast<double>(n);
  result.acc = 100.0 * result.predictions.eq(labels.cpu()).sum().item<double>() / static_cast<double>(n);
  return result;
}

TestReport Trainer::make_report(const torch::Tensor& predictions) const {
  const auto k = static_cast<size_t>(spec_.model.classes);
  TestReport report;
  report.class_correct.assign(k, 0);
  report.class_total.assign(k, 0);
  report.confusion.assign(k, std::vector<int64_t>(k, 0));
  const auto truth = data_.test.labels.accessor<int64_t, 1>();
  const auto pred = predictions.accessor<int64_t, 1>();
  for (int64_t i = 0; i < truth.size(0); ++i) {
    const auto t = static_cast<size_t>(truth[i]), p = static_cast<size_t>(pred[i]);
    report.class_total[t]++;
    report.confusion[t][p]++;
    if (t == p)
      report.class_correct[t]++;
    else
      report.misclassified.emplace_back(i, pred[i]);
  }
  return report;
}

void Trainer::save_checkpoint(const std::string& path, int64_t epoch, int64_t step, double loss_sum, int64_t correct,
                              int64_t seen) const {
  torch::serialize::OutputArchive archive, model, optimizer;
  net_->save(model);
  optimizer_->save(optimizer);
  archive.write("model", model);
  archive.write("optimizer", optimizer);
  archive.write("epoch", torch::tensor(epoch));
  archive.write("step", torch::tensor(step));
  archive.write("loss_sum", torch::tensor(loss_sum, torch::kDouble));
  archive.write("correct", torch::tensor(correct));
  archive.write("seen", torch::tensor(seen));
  archive.write("data_fingerprint", torch::tensor(static_cast<int64_t>(data_fingerprint(data_))));
  if (!ema_.empty()) {
    archive.write("ema_updates", torch::tensor(ema_updates_));
    for (size_t i = 0; i < ema_.size(); ++i) archive.write("ema_" + std::to_string(i), ema_[i]);
  }
  // Serialized in memory, then written by us: LibTorch's file writer throws from
  // a destructor when the disk fills, which aborts the process.
  std::ostringstream buffer;
  archive.save_to(buffer);
  write_file_atomically(path, buffer.str());
}

int64_t checkpoint_epoch(const std::string& path) {
  torch::serialize::InputArchive archive;
  archive.load_from(path);
  torch::Tensor epoch;
  archive.read("epoch", epoch);
  return epoch.item<int64_t>();
}

void Trainer::load_checkpoint(const std::string& path, int64_t& epoch, int64_t& step, double& loss_sum,
                              int64_t& correct, int64_t& seen) {
  if (!std::filesystem::exists(path)) throw DataError(path + ": checkpoint missing; the run cannot be resumed");
  torch::serialize::InputArchive archive, model, optimizer;
  // A fresh tensor per key: InputArchive::read writes into a defined tensor in place.
  auto scalar = [&](const char* key) {
    torch::Tensor t;
    archive.read(key, t);
    return t;
  };
  torch::Tensor fingerprint;
  try {
    archive.load_from(path, device_);
    archive.read("model", model);
    archive.read("optimizer", optimizer);
    net_->load(model);
    apply_layout();  // loading replaces the parameters' storage with the saved layout
    optimizer_->load(optimizer);
    epoch = scalar("epoch").item<int64_t>();
    step = scalar("step").item<int64_t>();
    loss_sum = scalar("loss_sum").item<double>();
    correct = scalar("correct").item<int64_t>();
    seen = scalar("seen").item<int64_t>();
    archive.try_read("data_fingerprint", fingerprint);  // absent in checkpoints of runner 0.1.0
    if (!ema_.empty()) {
      ema_updates_ = scalar("ema_updates").item<int64_t>();
      for (size_t i = 0; i < ema_.size(); ++i) {
        torch::Tensor t;
        archive.read("ema_" + std::to_string(i), t);
        ema_[i] = t.to(device_);
      }
    }
  } catch (const c10::Error& e) {
    std::string reason = e.what();
    throw DataError(path + ": cannot read the checkpoint (corrupt, or from another model): " +
                    reason.substr(0, reason.find('\n')));
  }
  // Resuming on other data would silently mix two datasets in one run.
  if (fingerprint.defined() && static_cast<uint64_t>(fingerprint.item<int64_t>()) != data_fingerprint(data_))
    throw DataError(path + ": the training or test data changed since this checkpoint was written (data.root " +
                    spec_.data.root + "); restore the data the run started with, or start a new run");
}

Trainer::StepResult Trainer::train_step(const torch::Tensor& index, double lr, torch::Generator& generator) {
  // The named scopes are what `runner bench --profile` reports besides the layers.
  torch::Tensor x, y;
  {
    RECORD_FUNCTION("batch + augmentation", std::vector<c10::IValue>());
    x = in_layout(transform_.train(train_images_.index_select(0, index), generator));
    y = train_labels_.index_select(0, index);
  }
  {
    RECORD_FUNCTION("optimizer (zero_grad)", std::vector<c10::IValue>());
    for (auto& group : optimizer_->param_groups()) group.options().set_lr(lr);
    optimizer_->zero_grad();
  }
  const torch::Tensor logits = net_->forward(x);
  torch::Tensor loss;
  StepResult result;
  {
    RECORD_FUNCTION("loss", std::vector<c10::IValue>());
    loss = training_loss(logits, y, spec_.train.label_smoothing);
    result.loss = loss.item<double>();
  }
  if (!std::isfinite(result.loss)) return result;  // no update from a diverged step
  loss.backward();
  {
    RECORD_FUNCTION("optimizer (step, ema)", std::vector<c10::IValue>());
    optimizer_->step();
    update_ema();
    result.correct = logits.argmax(1).eq(y).sum();
  }
  return result;
}

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
      {"Convolution", "layer: Conv2d"},      {"NativeBatchNorm", "layer: BatchNorm2d"},
      {"NativeGroupNorm", "layer: GroupNorm"}, {"NativeLayerNorm", "layer: LayerNorm"},
      {"Relu", "layer: ReLU"},              {"MaxPool2D", "layer: MaxPool2d"},
      {"AvgPool2D", "layer: AvgPool2d"},     {"Mean", "layer: AdaptiveAvgPool2d"},
      {"Add", "layer: Residual"},           {"Addmm", "layer: Linear"},
      {"NllLoss", "loss"},                  {"LogSoftmax", "loss"},
      {"BatchNormNhwc", "layer: BatchNorm2d"}, {"GroupNormNhwc", "layer: GroupNorm"}};  // layers/norm_kernels.cpp
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
      const torch::Tensor index =
          torch::randint(0, n, {std::min(batch, n)}, generator, torch::kLong).to(device_);
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

TrainResult Trainer::run(const TrainObserver& observer, const std::string& checkpoint, bool resume,
                         std::vector<EpochMetrics> previous) {
  const TrainSpec& train = spec_.train;
  const int64_t n = train_labels_.size(0);
  const int64_t batch = std::min(train.batch_size, n);
  const int64_t steps = (n + batch - 1) / batch;
  int64_t epoch = 0, start_step = 0, seen = 0, correct = 0;
  double loss_sum = 0;
  if (resume) load_checkpoint(checkpoint, epoch, start_step, loss_sum, correct, seen);

  TrainResult result;
  result.epochs = std::move(previous);
  result.epochs.resize(static_cast<size_t>(epoch));  // epochs after the checkpoint are redone
  Progress progress(train.epochs, steps);
  // A CPU generator on every device: the draws are tiny and stay reproducible across devices.
  torch::Generator generator = torch::make_generator<at::CPUGeneratorImpl>(0);
  const auto run_start = Clock::now();
  int64_t steps_this_run = 0;
  EvalResult last_eval;

  for (; epoch < train.epochs; ++epoch) {
    net_->train();
    const auto epoch_start = Clock::now();
    // The epoch's order and each step's randomness derive from (seed, epoch,
    // step) alone, so a run resumed mid-epoch continues exactly as it would have.
    generator.set_current_seed(mix_seed(static_cast<uint64_t>(train.seed), static_cast<uint64_t>(epoch), 0xFFFF));
    const torch::Tensor order = torch::randperm(n, generator, torch::TensorOptions().dtype(torch::kLong)).to(device_);
    double lr = 0;
    torch::Tensor correct_now = torch::zeros({}, torch::TensorOptions().dtype(torch::kLong).device(device_));
    auto correct_total = [&] { return correct + correct_now.item<int64_t>(); };
    for (int64_t step = start_step; step < steps; ++step) {
      const uint64_t step_seed = mix_seed(static_cast<uint64_t>(train.seed), static_cast<uint64_t>(epoch),
                                          static_cast<uint64_t>(step));
      generator.set_current_seed(step_seed);
      torch::manual_seed(step_seed + 1);  // dropout
      const int64_t begin = step * batch, len = std::min(batch, n - begin);
      lr = learning_rate_at(train, epoch * steps + step, steps);
      const StepResult r = train_step(order.narrow(0, begin, len), lr, generator);
      const double loss_value = r.loss;
      if (!std::isfinite(loss_value)) {
        result.status = RunStatus::Diverged;
        result.message = "loss became " + std::to_string(loss_value) + " at epoch " + std::to_string(epoch + 1) +
                         ", step " + std::to_string(step + 1) + " of " + std::to_string(steps) + " (global step " +
                         std::to_string(epoch * steps + step + 1) + ", lr " + std::to_string(lr) + ")";
        return result;
      }
      loss_sum += loss_value * static_cast<double>(len);
      correct_now += r.correct;
      seen += len;
      ++steps_this_run;
      const double elapsed = seconds_since(epoch_start);
      progress.step(epoch + 1, step, static_cast<double>(seen) / std::max(elapsed, 1e-9), loss_sum / static_cast<double>(seen),
                    elapsed);
      if (observer.stop_requested && observer.stop_requested() && !(step + 1 == steps && epoch + 1 == train.epochs)) {
        save_checkpoint(checkpoint, epoch, step + 1, loss_sum, correct_total(), seen);
        result.status = RunStatus::Interrupted;
        result.message = "stopped at epoch " + std::to_string(epoch + 1) + ", step " + std::to_string(step + 1) +
                         "; checkpoint " + checkpoint;
        return result;
      }
    }
    last_eval = evaluate(test_images_, test_labels_);
    EpochMetrics m;
    if (val_labels_.defined() && val_labels_.size(0) > 0) {
      const EvalResult val = evaluate(val_images_, val_labels_);
      m.val_loss = val.loss;
      m.val_acc = val.acc;
    }
    m.epoch = epoch + 1;
    m.train_loss = loss_sum / static_cast<double>(seen);
    m.train_acc = 100.0 * static_cast<double>(correct_total()) / static_cast<double>(seen);
    m.test_loss = last_eval.loss;
    m.test_acc = last_eval.acc;
    m.lr = lr;
    m.seconds = seconds_since(epoch_start);
    result.epochs.push_back(m);
    if (observer.on_epoch) observer.on_epoch(m);
    // Record first, then checkpoint: a kill in between only repeats this epoch.
    save_checkpoint(checkpoint, epoch + 1, 0, 0.0, 0, 0);
    start_step = 0, seen = 0, correct = 0, loss_sum = 0;
    const double per_epoch = seconds_since(run_start) / static_cast<double>(std::max<int64_t>(steps_this_run, 1)) *
                             static_cast<double>(steps);
    progress.epoch_done(m, per_epoch * static_cast<double>(train.epochs - epoch - 1));
  }
  if (!last_eval.predictions.defined()) last_eval = evaluate(test_images_, test_labels_);
  result.report = make_report(last_eval.predictions);
  return result;
}

}  // namespace runner
