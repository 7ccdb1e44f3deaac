// Evaluation: test and validation loss and accuracy (with test-time
// augmentation), and the per-class report of the final model.
#include "runner/train/trainer.h"

#include <cmath>

namespace runner {

torch::Tensor eval_log_probs(const std::function<torch::Tensor(const torch::Tensor&)>& forward, const torch::Tensor& x,
                             const std::string& tta) {
  const torch::Tensor log_probs = torch::log_softmax(forward(x), 1);
  if (tta == "none") return log_probs;
  // The mean of the probabilities of the image and its mirror, in log space.
  const torch::Tensor flipped = torch::log_softmax(forward(x.flip({3})), 1);
  if (tta == "flip") return torch::logsumexp(torch::stack({log_probs, flipped}), 0) - std::log(2.0);
  // flip_translate (airbench's): those two at 1/4 each, and both again shifted one pixel
  // up-left and one down-right (borders reflected) at 1/8 each.
  namespace F = torch::nn::functional;
  const torch::Tensor padded = F::pad(x, F::PadFuncOptions({1, 1, 1, 1}).mode(torch::kReflect));
  const int64_t h = x.size(2), w = x.size(3);
  std::vector<torch::Tensor> views{log_probs + std::log(0.25), flipped + std::log(0.25)};
  for (const int64_t offset : {2, 0}) {
    const torch::Tensor shifted = padded.narrow(2, offset, h).narrow(3, offset, w);
    views.push_back(torch::log_softmax(forward(shifted), 1) + std::log(0.125));
    views.push_back(torch::log_softmax(forward(shifted.flip({3})), 1) + std::log(0.125));
  }
  return torch::logsumexp(torch::stack(views), 0);
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
  const int64_t n = labels.size(0), batch = kEvalBatch;
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

}  // namespace runner
