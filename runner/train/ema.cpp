// train.ema: an exponential moving average of the weights, swapped in to evaluate;
// train.lookahead: one the weights are reset to every few steps.
#include "runner/train/trainer.h"

#include <cmath>

namespace runner {

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

std::optional<double> lookahead_decay_at(const TrainSpec& train, int64_t done, int64_t total) {
  if (train.lookahead_every <= 0) return std::nullopt;
  // The cubic ramp keeps early training free and averages hardest near the end.
  if (done % train.lookahead_every == 0)
    return train.lookahead_decay * std::pow(static_cast<double>(done) / static_cast<double>(total), 3.0);
  if (done == total) return 1.0;  // the weights end as the average, whatever step the run ends on
  return std::nullopt;
}

void lookahead_step(std::vector<torch::Tensor>& average, const std::vector<torch::Tensor>& weights, double decay) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < average.size(); ++i) {
    if (!average[i].is_floating_point()) continue;  // counters such as num_batches_tracked
    average[i].lerp_(weights[i].detach(), 1.0 - decay);
    weights[i].detach().copy_(average[i]);
  }
}

void Trainer::update_lookahead(int64_t done, int64_t total) {
  if (lookahead_.empty()) return;
  const auto decay = lookahead_decay_at(spec_.train, done, total);
  if (!decay) return;
  // A frozen parameter (whiten's filters, its bias after bias_epochs) stays as it is: its average follows it.
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < lookahead_params_; ++i)
    if (!model_state_[i].requires_grad()) lookahead_[i].copy_(model_state_[i]);
  lookahead_step(lookahead_, model_state_, *decay);
}

}  // namespace runner
