// Stage 3: the training loop. Knows nothing of SQL: it reports through
// TrainObserver and returns plain results; the CLI wires it to the store.
// Its parts, a file each: schedule, optimizer, device (and memory layout), ema,
// evaluate, checkpoint, progress, profile (runner bench).
#pragma once
#include <torch/torch.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "runner/config/spec.h"
#include "runner/model/builder.h"
#include "runner/train/data.h"
#include "runner/train/device.h"
#include "runner/train/metrics.h"
#include "runner/train/optimizer.h"
#include "runner/train/schedule.h"

namespace runner {

/// Called as the run goes; the store lives behind this.
struct TrainObserver {
  std::function<void(const EpochMetrics&)> on_epoch;
  std::function<bool()> stop_requested;  ///< polled after every step
};

/// Seeds LibTorch's global generator; call before building the model so the
/// initial weights depend only on train.seed.
void seed_everything(int64_t seed);

/// The training loss: cross-entropy against targets smoothed by train.label_smoothing
/// (1 - ε + ε/K on the labelled class, ε/K on each other class).
torch::Tensor training_loss(const torch::Tensor& logits, const torch::Tensor& labels, double label_smoothing);
/// Log-probabilities that evaluation scores: the model's, or with tta "flip" the
/// log of the mean of the probabilities of the images and of their mirrors, or
/// with "flip_translate" also of both shifted one pixel each way (weights 1/4, 1/8).
torch::Tensor eval_log_probs(const std::function<torch::Tensor(const torch::Tensor&)>& forward, const torch::Tensor& x,
                             const std::string& tta);
/// train.lookahead after `done` of `total` steps: the decay to average with when
/// this step updates (decay * (done / total)^3 every `every` steps; 1, the weights
/// taking the average, after a last step that is not one), else nothing.
std::optional<double> lookahead_decay_at(const TrainSpec& train, int64_t done, int64_t total);
/// average = decay * average + (1 - decay) * weights, then weights = average
/// (floating-point tensors only; counters are left alone).
void lookahead_step(std::vector<torch::Tensor>& average, const std::vector<torch::Tensor>& weights, double decay);
/// The number of epochs completed in a checkpoint file (checkpoint.cpp).
int64_t checkpoint_epoch(const std::string& path);

/// Images per forward pass when evaluating: bounds memory. The runner's evaluation, export --verify's
/// and the convolution check before them (guard_onednn) use the same, so they see the same shapes.
constexpr int64_t kEvalBatch = 1000;

class Trainer {
 public:
  Trainer(const ExperimentSpec& spec, Net net, const Dataset& data, torch::Device device);

  /// Trains from the start, or from `checkpoint` when resume is true. Writes
  /// `checkpoint` after every epoch and when stopped.
  TrainResult run(const TrainObserver& observer, const std::string& checkpoint, bool resume,
                  std::vector<EpochMetrics> previous = {});

  struct Throughput {
    double train_images_per_s = 0;  ///< training steps: batch gather, augmentation, forward, backward, optimizer
    double eval_images_per_s = 0;   ///< evaluation of the test split, no autograd
  };
  /// Steady-state speed: `warmup` untimed steps, then `steps` timed ones of
  /// `batch` random training images, then one timed pass over the test split.
  Throughput benchmark(int64_t warmup, int64_t steps, int64_t batch);

  /// Where a training step's time goes, per layer type (forward, and backward by
  /// the autograd node each layer's op creates) and per step part (augmentation,
  /// loss, optimizer), in ms per step over `steps` profiled steps.
  struct ProfileRow {
    std::string part;
    double forward_ms = 0, backward_ms = 0;
  };
  std::vector<ProfileRow> profile(int64_t steps, int64_t batch);

 private:
  struct StepResult {
    double loss = 0;
    torch::Tensor correct;  ///< on the device: summed without a host sync per step
  };
  /// One optimizer step on the training images at `index`.
  StepResult train_step(const torch::Tensor& index, double lr, torch::Generator& generator, int64_t epoch = 0);
  struct EvalResult {
    double loss = 0, acc = 0;
    torch::Tensor predictions;
  };
  EvalResult evaluate(const torch::Tensor& images, const torch::Tensor& labels);
  void save_checkpoint(const std::string& path, int64_t epoch, int64_t step, double loss_sum, int64_t correct,
                       int64_t seen) const;
  void load_checkpoint(const std::string& path, int64_t& epoch, int64_t& step, double& loss_sum, int64_t& correct,
                       int64_t& seen);
  TestReport make_report(const torch::Tensor& predictions) const;
  void apply_layout();  ///< convolution weights to channels-last when the layout says so
  torch::Tensor in_layout(const torch::Tensor& images) const;
  /// train.ema: after each step, average = d * average + (1 - d) * weights,
  /// d = min(ema, (1 + n) / (10 + n)) so early steps are not dominated by the init.
  void update_ema();
  /// Swaps the averaged weights in (evaluation) and back; no-op without train.ema.
  void swap_ema();
  /// lookahead_step when lookahead_decay_at says so; no-op without train.lookahead.
  void update_lookahead(int64_t done, int64_t total);

  const ExperimentSpec& spec_;
  Net net_;
  const Dataset& data_;
  torch::Device device_;
  BatchTransform transform_;
  bool channels_last_;
  Optimizer optimizer_;
  torch::Tensor train_images_, train_labels_, val_images_, val_labels_, test_images_, test_labels_;  // on device_
  std::vector<torch::Tensor> model_state_;  ///< parameters, then buffers; filled with train.ema or lookahead
  std::vector<torch::Tensor> ema_;          ///< the average of model_state_
  int64_t ema_updates_ = 0;
  std::vector<torch::Tensor> lookahead_;  ///< train.lookahead's average of model_state_
  size_t lookahead_params_ = 0;           ///< how many of model_state_ are parameters
  torch::Tensor flip_start_;              ///< horizontal_flip: alternating: each training image's epoch-0 flip
};

}  // namespace runner
