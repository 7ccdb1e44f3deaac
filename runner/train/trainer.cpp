#include "runner/train/trainer.h"

#include <ATen/CPUGeneratorImpl.h>  // used by name below: not left to whatever torch.h pulls in
#include <ATen/record_function.h>

#include <algorithm>
#include <cmath>

#include "layers/registry.h"
#include "runner/train/progress.h"

namespace runner {

namespace {

/// splitmix64: independent, reproducible seeds per (run seed, epoch, step).
uint64_t mix_seed(uint64_t seed, uint64_t epoch, uint64_t step) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ULL + epoch * 0xBF58476D1CE4E5B9ULL + step * 0x94D049BB133111EBULL + 1;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return (z ^ (z >> 31)) & 0x7FFFFFFFFFFFULL;
}

}  // namespace

void seed_everything(int64_t seed) { torch::manual_seed(static_cast<uint64_t>(seed)); }

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
  // Data-dependent layers (whiten) before anything copies the weights; a resumed run's
  // checkpoint then replaces them with the same values.
  for (const auto& module : net_->modules(/*include_self=*/false))
    if (auto* layer = dynamic_cast<InitFromData*>(module.get())) {
      torch::NoGradGuard no_grad;
      layer->init_from_data([&](int64_t n) {
        const int64_t count = n <= 0 ? train_images_.size(0) : std::min(n, train_images_.size(0));
        return in_layout(transform_.eval(train_images_.narrow(0, 0, count)));
      });
    }
  if (spec_.train.ema > 0 || spec_.train.lookahead_every > 0) {
    // Handles stay valid: the optimizer and checkpoint loading update them in place.
    model_state_ = net_->parameters();
    lookahead_params_ = model_state_.size();
    for (const auto& b : net_->buffers()) model_state_.push_back(b);
    for (const auto& t : model_state_) (spec_.train.ema > 0 ? ema_ : lookahead_).push_back(t.detach().clone());
  }
  if (transform_.alternates()) {
    // Fixed by the seed alone, like the order: a resumed run flips as the uninterrupted one.
    auto generator =
        torch::make_generator<at::CPUGeneratorImpl>(mix_seed(static_cast<uint64_t>(spec_.train.seed), 0, 0xF11F));
    flip_start_ = (torch::rand({train_labels_.size(0)}, generator) < 0.5).to(device_);
  }
}

void Trainer::apply_layout() {
  if (channels_last_) to_channels_last(*net_);
}

torch::Tensor Trainer::in_layout(const torch::Tensor& images) const {
  return channels_last_ ? images.contiguous(at::MemoryFormat::ChannelsLast) : images;
}

torch::Tensor training_loss(const torch::Tensor& logits, const torch::Tensor& labels, double label_smoothing) {
  return torch::nn::functional::cross_entropy(
      logits, labels, torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(label_smoothing));
}

Trainer::StepResult Trainer::train_step(const torch::Tensor& index, double lr, torch::Generator& generator,
                                        int64_t epoch) {
  // The named scopes are what `runner bench --profile` reports besides the layers.
  torch::Tensor x, y;
  {
    RECORD_FUNCTION("batch + augmentation", std::vector<c10::IValue>());
    FlipPhase phase;
    if (flip_start_.defined()) phase = {flip_start_.index_select(0, index), epoch};
    x = in_layout(transform_.train(train_images_.index_select(0, index), generator, phase));
    y = train_labels_.index_select(0, index);
  }
  {
    RECORD_FUNCTION("optimizer (zero_grad)", std::vector<c10::IValue>());
    optimizer_.set_lr(lr);
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
    for (const auto& module : net_->modules(/*include_self=*/false))
      if (auto* layer = dynamic_cast<EpochAware*>(module.get())) layer->start_epoch(epoch);
    const auto epoch_start = Clock::now();
    // The epoch's order and each step's randomness derive from (seed, epoch,
    // step) alone, so a run resumed mid-epoch continues exactly as it would have.
    generator.set_current_seed(mix_seed(static_cast<uint64_t>(train.seed), static_cast<uint64_t>(epoch), 0xFFFF));
    const torch::Tensor order = torch::randperm(n, generator, torch::TensorOptions().dtype(torch::kLong)).to(device_);
    double lr = 0;
    torch::Tensor correct_now = torch::zeros({}, torch::TensorOptions().dtype(torch::kLong).device(device_));
    auto correct_total = [&] { return correct + correct_now.item<int64_t>(); };
    for (int64_t step = start_step; step < steps; ++step) {
      const uint64_t step_seed =
          mix_seed(static_cast<uint64_t>(train.seed), static_cast<uint64_t>(epoch), static_cast<uint64_t>(step));
      generator.set_current_seed(step_seed);
      torch::manual_seed(step_seed + 1);  // dropout
      const int64_t begin = step * batch, len = std::min(batch, n - begin);
      lr = learning_rate_at(train, epoch * steps + step, steps);
      const StepResult r = train_step(order.narrow(0, begin, len), lr, generator, epoch);
      const double loss_value = r.loss;
      if (!std::isfinite(loss_value)) {
        result.status = RunStatus::Diverged;
        result.message = "loss became " + std::to_string(loss_value) + " at epoch " + std::to_string(epoch + 1) +
                         ", step " + std::to_string(step + 1) + " of " + std::to_string(steps) + " (global step " +
                         std::to_string(epoch * steps + step + 1) + ", lr " + std::to_string(lr) + ")";
        return result;
      }
      update_lookahead(epoch * steps + step + 1, train.epochs * steps);
      loss_sum += loss_value * static_cast<double>(len);
      correct_now += r.correct;
      seen += len;
      ++steps_this_run;
      const double elapsed = seconds_since(epoch_start);
      progress.step(epoch + 1, step, static_cast<double>(seen) / std::max(elapsed, 1e-9),
                    loss_sum / static_cast<double>(seen), elapsed);
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
