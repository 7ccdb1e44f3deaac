// whiten: a frozen first layer computed from the training set (the patch
// whitening of airbench / hlb-CIFAR10). Its filters are the eigenvectors of the
// covariance of k×k patches of the first `images` training images (normalized,
// not augmented), each scaled by 1/sqrt(eigenvalue + eps), and their negations,
// so 2·C·k² output channels whose responses are decorrelated with unit variance.
// The filters are never trained; the bias is, for the first `bias_epochs` epochs
// only, then it is frozen too.
//
//   - whiten                                   # kernel 2: 3·4·2 = 24 channels
//   - whiten: {kernel: 2, eps: 5.0e-4, bias_epochs: 3, images: 5000, padding: 0}
//
// kernel 2 (shorthand), padding 0, eps 5e-4, bias_epochs 3 (0: the bias stays
// 0), images 5000 (0 = all). Only as the model's first layer: its statistics are
// the images'. Summary row: Conv2d, 2·C·k²·C·k² frozen weights + 2·C·k² biases
// (every parameter counts against the budget; the table's Non-trainable line
// shows the frozen ones).
#include "layers/layer_util.h"
#include "layers/registry.h"
#include "layers/torch_compat.h"

namespace runner {
namespace {

class WhitenImpl : public torch::nn::Module, public InitFromData, public EpochAware {
 public:
  WhitenImpl(int64_t channels, int64_t kernel, int64_t padding, double eps, int64_t bias_epochs, int64_t images)
      : kernel_(kernel), padding_(padding), eps_(eps), bias_epochs_(bias_epochs), images_(images) {
    const int64_t dims = channels * kernel * kernel;
    weight = register_parameter("weight", torch::zeros({2 * dims, channels, kernel, kernel}), /*requires_grad=*/false);
    bias = register_parameter("bias", torch::zeros({2 * dims}), /*requires_grad=*/bias_epochs > 0);
  }

  torch::Tensor forward(const torch::Tensor& x) { return torch::conv2d(x, weight, bias, {1, 1}, {padding_, padding_}); }

  void init_from_data(const std::function<torch::Tensor(int64_t)>& first_images) override {
    torch::NoGradGuard no_grad;
    const torch::Tensor x = first_images(images_).to(torch::kFloat64);
    const int64_t c = x.size(1), dims = c * kernel_ * kernel_;
    // [N, C·k², L] → one row per patch; the covariance about zero, as airbench (the inputs are normalized)
    const torch::Tensor patches =
        torch::nn::functional::unfold(x, torch::nn::functional::UnfoldFuncOptions({kernel_, kernel_}))
            .transpose(1, 2)
            .reshape({-1, dims});
    const torch::Tensor covariance = patches.t().matmul(patches) / static_cast<double>(patches.size(0));
    const auto [eigenvalues, eigenvectors] = compat::eigh(covariance);
    // Largest variance first; unfold's order (channel, row, column) is the filters' layout.
    const torch::Tensor filters = (eigenvectors.t() / torch::sqrt(eigenvalues + eps_).unsqueeze(1)).flip({0});
    const torch::Tensor w = filters.reshape({dims, c, kernel_, kernel_});
    weight.copy_(torch::cat({w, -w}).to(weight.dtype()));
    bias.zero_();
  }

  void start_epoch(int64_t epoch) override {
    if (epoch < bias_epochs_ || !bias.requires_grad()) return;
    bias.requires_grad_(false);
    bias.mutable_grad() = torch::Tensor();  // no grad: the optimizer skips it, momentum included
  }

  torch::Tensor weight, bias;

 private:
  int64_t kernel_, padding_;
  double eps_;
  int64_t bias_epochs_, images_;
};
TORCH_MODULE(Whiten);

LayerDef whiten_def() {
  return LayerDef{
      "whiten",
      "frozen patch-whitening filters from the training images (first layer only)",
      {
          {"kernel", OptionKind::Int, int64_t{2}, Range::Positive, {}, false, "patch size"},
          {"padding", OptionKind::Int, int64_t{0}, Range::NonNegative, {}, false, ""},
          {"eps", OptionKind::Double, 5e-4, Range::Positive, {}, false, "added to each eigenvalue"},
          {"bias_epochs", OptionKind::Int, int64_t{3}, Range::NonNegative, {}, false, "epochs the bias trains"},
          {"images",
           OptionKind::Int,
           int64_t{5000},
           Range::NonNegative,
           {},
           false,
           "training images for the statistics (0 = all)"},
      },
      "kernel",
      [](const LayerSpec& spec, const Shape& in, Planner& planner) {
        require_feature_map(in, "whiten");
        const int64_t k = spec.get_int("kernel"), out = 2 * in[0] * k * k;
        const Shape shape = spatial_out(in, out, k, 1, spec.get_int("padding"));
        const int64_t weights = out * in[0] * k * k;
        planner.add_row("Conv2d", shape, weights + out, spec.get_int("bias_epochs") > 0 ? weights : weights + out);
        return shape;
      },
      LayerRole::Layer,
      "its filters come from the training images' patches",
  };
}

torch::nn::AnyModule make_whiten(const LayerSpec& spec, const Shape& in, ModuleBuilder&) {
  return torch::nn::AnyModule(Whiten(in[0], spec.get_int("kernel"), spec.get_int("padding"), spec.get_double("eps"),
                                     spec.get_int("bias_epochs"), spec.get_int("images")));
}

}  // namespace
RUNNER_REGISTER_LAYER(whiten_def, make_whiten);
}  // namespace runner
