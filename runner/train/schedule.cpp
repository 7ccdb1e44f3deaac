#include "runner/train/schedule.h"

#include <cmath>

namespace runner {

namespace {

double cos_anneal(double start, double end, double pct) {
  return end + (start - end) / 2.0 * (std::cos(M_PI * pct) + 1);
}

}  // namespace

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

}  // namespace runner
