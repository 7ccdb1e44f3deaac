// train.ema: an exponential moving average of the weights, swapped in to evaluate.
#include "runner/train/trainer.h"

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

}  // namespace runner
