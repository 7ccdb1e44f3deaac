#include "runner/train/progress.h"

#include <unistd.h>

#include <cstdio>

namespace runner {

Progress::Progress(int64_t epochs, int64_t steps) : epochs_(epochs), steps_(steps), tty_(isatty(STDERR_FILENO) != 0) {}

void Progress::step(int64_t epoch, int64_t step, double images_per_s, double loss, double epoch_seconds) {
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

void Progress::epoch_done(const EpochMetrics& m, double run_eta) {
  if (tty_) std::fprintf(stderr, "\r%120s\r", "");
  char val[64] = "";
  if (m.val_acc) std::snprintf(val, sizeof val, "  val loss %.4f acc %.2f%%", *m.val_loss, *m.val_acc);
  std::fprintf(stderr,
               "epoch %lld/%lld  train loss %.4f acc %.2f%%%s  test loss %.4f acc %.2f%%  lr %.5f  %.1fs  ETA %s\n",
               static_cast<long long>(m.epoch), static_cast<long long>(epochs_), m.train_loss, m.train_acc, val,
               m.test_loss, m.test_acc, m.lr, m.seconds, format_duration(run_eta).c_str());
  std::fflush(stderr);
}

}  // namespace runner
