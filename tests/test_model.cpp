// Stage 2: plan and builder. The seed tables row for row; the planned counts and
// shapes against the built modules over many stacks.
#include "doctest_torch.h"

#include <random>
#include <regex>
#include <sstream>

#include "layers/norm_kernels.h"
#include "layers/standardized_conv.h"
#include "runner/base/errors.h"
#include "runner/base/text.h"
#include "runner/config/config.h"
#include "runner/config/summary.h"
#include "runner/config/yaml_reader.h"
#include "runner/model/builder.h"
#include "test_util.h"

using namespace runner;

namespace {

struct SeedRow {
  std::string name, shape, params;
};

/// The summary tables of the seed study, in file order (BN, LN, GN).
std::vector<std::vector<SeedRow>> seed_tables() {
  const std::string text = test_util::read_file(test_util::source_path("../shared/seed/session8-assignment.md"));
  static const std::regex kRow(R"(^\s+(\w+-\d+)\s+(\[[-0-9, ]+\])\s+([0-9,]+)$)");
  std::vector<std::vector<SeedRow>> tables;
  std::istringstream in(text);
  bool inside = false;
  for (std::string line; std::getline(in, line);) {
    if (line.find("Layer (type)") != std::string::npos) {
      tables.emplace_back();
      inside = true;
    } else if (line.rfind("Total params", 0) == 0) {
      inside = false;
    }
    std::smatch m;
    if (inside && std::regex_match(line, m, kRow)) tables.back().push_back({m[1], m[2], m[3]});
  }
  return tables;
}

/// Records the output shape after each top-level layer.
struct TopLevelShapes : Planner {
  void add_row(const std::string&, const Shape&, int64_t, int64_t) override {}
  void problem(const std::string& message) override { FAIL(message); }
  Shape walk(const std::vector<LayerSpec>& layers, const Shape& in) override {
    Shape shape = in;
    for (const auto& layer : layers) shape = find_layer_def(layer.type)->plan(layer, shape, *this);
    return shape;
  }
};

/// Builds the model and checks count and every top-level shape against a real forward pass.
void check_plan_matches_module(const ExperimentSpec& spec) {
  BuiltModel built = build_model(spec.model);
  CHECK(count_trainable_params(*built.net) == built.plan.total_params);
  int64_t row_sum = 0;
  for (const auto& row : built.plan.rows) row_sum += row.params;
  CHECK(row_sum == built.plan.total_params);

  torch::manual_seed(0);
  const auto& in = spec.model.input;
  torch::Tensor x = torch::randn({2, in[0], in[1], in[2]});
  Shape shape(in.begin(), in.end());
  TopLevelShapes planner;
  size_t i = 0;
  for (auto& module : *built.net->layers()) {
    const LayerSpec& layer = spec.model.layers.at(i++);
    shape = find_layer_def(layer.type)->plan(layer, shape, planner);
    x = module.forward(x);
    CAPTURE(layer.path);
    CHECK(x.sizes().slice(1).vec() == shape);
  }
  CHECK(i == spec.model.layers.size());
  CHECK(built.net->forward(torch::randn({2, in[0], in[1], in[2]})).sizes().vec() ==
        std::vector<int64_t>{2, spec.model.classes});
}

ExperimentSpec model_of(const std::string& layers_yaml, const std::string& model_extra = "") {
  return parse_experiment("name: t\nmodel:\n" + model_extra + "  layers:\n" + layers_yaml + "train: {epochs: 1}\n",
                          "t.yaml", {"budget.max_params=100000000"});
}

}  // namespace

TEST_CASE("runner check's tables equal the seed's three tables, row for row") {
  const auto tables = seed_tables();
  REQUIRE(tables.size() == 3);
  const char* files[] = {"experiments/session8/bn.yaml", "experiments/session8/ln.yaml",
                         "experiments/session8/gn.yaml"};
  for (int t = 0; t < 3; ++t) {
    CAPTURE(files[t]);
    const ExperimentSpec spec = load_experiment(test_util::source_path(files[t]));
    const ModelPlan plan = plan_model(spec.model);
    REQUIRE(tables[t].size() == 30);
    REQUIRE(plan.rows.size() == 30);
    for (size_t r = 0; r < 30; ++r) {
      CAPTURE(r);
      CHECK(plan.rows[r].type_name + "-" + std::to_string(r + 1) == tables[t][r].name);
      CHECK(shape_str(plan.rows[r].output) == tables[t][r].shape);
      CHECK(format_thousands(plan.rows[r].params) == tables[t][r].params);
    }
    CHECK(plan.total_params == 39056);
    const std::string summary = format_summary(plan);
    CHECK(summary.find("Total params: 39,056\nTrainable params: 39,056\nNon-trainable params: 0\n") !=
          std::string::npos);
    CHECK(summary.find("Forward/backward pass size (MB): 1.28\n") != std::string::npos);
    CHECK(summary.find("Estimated Total Size (MB): 1.44\n") != std::string::npos);
    check_plan_matches_module(spec);
  }
}

TEST_CASE("planned parameters and shapes equal the built module's, over hand-picked stacks") {
  const std::vector<std::pair<std::string, std::string>> stacks{
      {"    - conv: {out: 8, kernel: 5, padding: 2, stride: 2, bias: true}\n    - gap\n    - linear: 10\n", ""},
      {"    - conv: {out: 12, kernel: 3, dilation: 2, padding: 1}\n    - avgpool: {kernel: 3, stride: 2, padding: 1}\n"
       "    - conv: {out: 24, kernel: 3, groups: 3, padding: 1}\n    - gmp\n    - conv: {out: 10, kernel: 1, block: "
       "false}\n",
       "  norm: group\n  groups: 3\n"},
      {"    - conv: {out: 16, padding: 1}\n    - residual:\n        - conv: {out: 16, padding: 1}\n"
       "        - conv: {out: 16, padding: 1, norm: none}\n    - residual: {project: true, layers: [{conv: {out: 32, "
       "stride: 2, padding: 1}}]}\n"
       "    - residual: {project: true, layers: [{conv: {out: 40, kernel: 1}}, {maxpool: 2}]}\n    - gap\n    - "
       "linear: {out: 10, bias: false}\n",
       "  norm: layer\n"},
      {"    - conv: {out: 8, kernel: 7, padding: 3, block: [conv, norm, leaky_relu]}\n    - dropout: 0.2\n    - elu\n"
       "    - norm: {type: group, groups: 2}\n    - conv: {out: 8, kernel: 4, stride: 3}\n    - tanh\n    - silu\n    "
       "- gelu\n"
       "    - maxpool: {kernel: 3, stride: 1, padding: 1}\n    - linear: 32\n    - relu\n    - dropout: {p: 0.5}\n    "
       "- linear: 10\n",
       "  norm: none\n  block: [conv, gelu]\n"},
      {"    - conv: {out: 6, kernel: 2, stride: 2, groups: 3}\n    - norm\n    - conv: {out: 10, kernel: 16, block: "
       "false}\n",
       "  input: [3, 32, 32]\n  groups: 2\n"},
      {"    - conv: {out: 4, kernel: 3}\n    - gap\n    - linear: 5\n", "  input: [1, 9, 7]\n  classes: 5\n"},
      {"    - conv: {out: 8, padding: 1, standardize: true, bias: true}\n    - maxpool: 2\n"
       "    - residual:\n        - conv: {out: 8, padding: 2, stride: 1, dilation: 2, groups: 2, standardize: true}\n"
       "    - gmp\n    - linear: {out: 10, bias: false}\n",
       "  norm: group\n  groups: 2\n"},
      {"    - conv: {out: 8, padding: 1}\n    - concat:\n        - branch: [{conv: {out: 4, kernel: 1}}]\n"
       "        - branch:\n            - conv: {out: 6, kernel: 1}\n            - conv: {out: 10, kernel: 3, padding: "
       "1}\n"
       "        - branch: [{maxpool: {kernel: 3, stride: 1, padding: 1}}]\n    - se: {reduction: 4}\n"
       "    - branch: [{conv: {out: 12, kernel: 3, stride: 2}}, se]\n    - gap\n    - linear: 10\n",
       "  norm: batch\n"},
  };
  for (const auto& [layers, extra] : stacks) {
    CAPTURE(layers);
    check_plan_matches_module(model_of(layers, extra));
  }
}

TEST_CASE("planned parameters and shapes equal the built module's, over 60 random stacks") {
  std::mt19937 rng(1234);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const char* norms[] = {"batch", "layer", "group", "none"};
  const char* acts[] = {"relu", "gelu", "silu", "leaky_relu", "elu", "tanh"};
  int built = 0;
  for (int attempt = 0; built < 60 && attempt < 2000; ++attempt) {
    std::string layers;
    const int depth = pick(1, 6);
    for (int d = 0; d < depth; ++d) {
      const int out = 2 * pick(1, 8);
      const int kind = pick(0, 9);
      if (kind <= 2) {
        layers += "    - conv: {out: " + std::to_string(out) + ", kernel: " + std::to_string(pick(1, 5)) +
                  ", padding: " + std::to_string(pick(0, 2)) + ", stride: " + std::to_string(pick(1, 2)) +
                  ", dilation: " + std::to_string(pick(1, 2)) + ", groups: " + std::to_string(pick(1, 2)) +
                  ", bias: " + (pick(0, 1) ? "true" : "false") + ", norm: " + norms[pick(0, 3)] + "}\n";
      } else if (kind == 3) {
        layers += std::string("    - ") + (pick(0, 1) ? "maxpool" : "avgpool") +
                  ": {kernel: " + std::to_string(pick(2, 3)) + ", padding: 1}\n";
      } else if (kind == 4) {
        layers += std::string("    - ") + acts[pick(0, 5)] + "\n    - dropout: 0.1\n";
      } else if (kind == 5) {
        layers += "    - residual: {project: " + std::string(pick(0, 1) ? "true" : "false") +
                  ", layers: [{conv: {out: " + std::to_string(out) +
                  ", padding: 1, stride: " + std::to_string(pick(1, 2)) + "}}]}\n";
      } else if (kind == 6) {
        layers += "    - norm: {type: " + std::string(norms[pick(0, 3)]) + ", groups: 1}\n";
      } else if (kind == 8) {
        layers += "    - se: " + std::to_string(pick(1, 8)) + "\n";
      } else if (kind == 9) {  // branches that keep the size: 1x1, 3x3 padded, a pool with stride 1
        layers += "    - concat:\n        - branch: [{conv: {out: " + std::to_string(out) +
                  ", kernel: 1}}]\n"
                  "        - branch: [{conv: {out: " +
                  std::to_string(2 * pick(1, 4)) + ", padding: 1}}" + (pick(0, 1) ? ", se" : "") + "]\n" +
                  (pick(0, 1) ? "        - branch: [{avgpool: {kernel: 3, stride: 1, padding: 1}}]\n" : "");
      } else {
        layers += "    - residual:\n        - relu\n";
      }
    }
    layers += pick(0, 1) ? "    - gap\n    - conv: {out: 10, kernel: 1, block: false}\n" : "    - linear: 10\n";
    const std::string extra = std::string("  norm: ") + norms[pick(0, 3)] + "\n  groups: 2\n";
    ExperimentSpec spec;
    try {
      spec = model_of(layers, extra);
    } catch (const ConfigError&) {
      continue;  // a random stack that does not fit (e.g. shrinks to nothing) is not what we test here
    }
    CAPTURE(layers);
    check_plan_matches_module(spec);
    ++built;
  }
  CHECK(built == 60);
}

TEST_CASE(
    "concat names both branches when their sizes differ and refuses an item that is not a branch, se counts its "
    "gates") {
  auto plan_error = [](const std::string& layers) {
    try {
      plan_model(model_of(layers).model);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  const std::string mismatch = plan_error(
      "    - concat:\n        - branch: [{conv: {out: 4, kernel: 1}}]\n        - branch: [{conv: {out: 4, kernel: "
      "3}}]\n"
      "    - gap\n    - linear: 10\n");
  CHECK(mismatch.find("t.yaml:4:7: key 'model.layers.0.concat': the branches must agree in height and width to be "
                      "joined on channels: model.layers.0.concat.layers.0.branch gives [-1, 4, 32, 32] but "
                      "model.layers.0.concat.layers.1.branch gives [-1, 4, 30, 30]") != std::string::npos);
  const std::string not_branch = plan_error(
      "    - concat: [{conv: {out: 4, kernel: 1}}, {conv: {out: 4, kernel: 1}}]\n"
      "    - gap\n    - linear: 10\n");
  CHECK(not_branch.find(
            "each item of concat is a branch (- branch: [layers...]), but model.layers.0.concat.layers.0.conv "
            "is a conv") != std::string::npos);
  CHECK(plan_error("    - concat: [{branch: [relu]}]\n    - gap\n    - linear: 10\n").find("at least two branches") !=
        std::string::npos);
  // se on 16 channels with reduction 4: 16·4 + 4 + 4·16 + 16 parameters, the shape unchanged
  const ModelPlan plan =
      plan_model(model_of("    - conv: {out: 16, block: false}\n    - se: 4\n    - gap\n    - linear: 10\n").model);
  REQUIRE(plan.rows.size() >= 2);
  CHECK(plan.rows[1].type_name == "SqueezeExcite");
  CHECK(plan.rows[1].params == 16 * 4 + 4 + 4 * 16 + 16);
  CHECK(plan.rows[1].output == Shape{16, 30, 30});
}

TEST_CASE("a model at or over max_params is refused with the count, the budget and the three largest layers") {
  const ExperimentSpec spec = load_experiment(test_util::source_path("experiments/session8/bn.yaml"));
  const ModelPlan plan = plan_model(spec.model);
  BudgetSpec budget = spec.budget;
  budget.max_params = 39056;  // "under" the budget: equal is refused
  try {
    check_param_budget(plan, budget);
    FAIL("expected BudgetError");
  } catch (const BudgetError& e) {
    const std::string message = e.what();
    CHECK(message.find("39,056 trainable parameters") != std::string::npos);
    CHECK(message.find("fewer than 39,056") != std::string::npos);
    CHECK(message.find("Conv2d-15 (model.layers.6.residual.layers.0.conv): 9,216") != std::string::npos);
    CHECK(message.find("Conv2d-26 (model.layers.11.residual.layers.0.conv): 9,216") != std::string::npos);
    CHECK(message.find("Conv2d-4 (model.layers.1.conv): 4,608") != std::string::npos);
  }
  budget.max_params = 39057;
  CHECK_NOTHROW(check_param_budget(plan, budget));
}

TEST_CASE("BatchNorm running statistics are buffers, not trainable parameters") {
  const ExperimentSpec spec = load_experiment(test_util::source_path("experiments/session8/bn.yaml"));
  const BuiltModel built = build_model(spec.model);
  int64_t buffers = 0;
  for (const auto& b : built.net->buffers()) buffers += b.numel();
  CHECK(buffers > 0);
  CHECK(count_trainable_params(*built.net) == 39056);
}

TEST_CASE("conv standardize: true convolves with each output channel's weights at mean 0, variance 1") {
  const ExperimentSpec spec = model_of(
      "    - conv: {out: 6, kernel: 3, padding: 2, stride: 2, dilation: 2, groups: 3, bias: true, "
      "standardize: true, block: false}\n    - gap\n    - linear: 10\n",
      "  input: [3, 9, 9]\n");
  CHECK(plan_model(spec.model).rows.at(0).params == 6 * 1 * 9 + 6);  // same parameters as a plain Conv2d
  torch::manual_seed(3);  // LibTorch seeds its generator differently in every process
  BuiltModel built = build_model(spec.model);
  std::shared_ptr<StandardizedConv2dImpl> conv;
  for (const auto& m : built.net->modules(/*include_self=*/false))
    if (auto c = std::dynamic_pointer_cast<StandardizedConv2dImpl>(m)) conv = c;
  REQUIRE(conv);

  const torch::Tensor x = torch::randn({4, 3, 9, 9});
  const torch::Tensor w = conv->weight.detach();
  const torch::Tensor flat = w.reshape({6, -1});
  const torch::Tensor expected_w = ((flat - flat.mean(1, true)) / (flat.var(1, false, true) + 1e-5).sqrt()).view_as(w);
  const torch::Tensor ws = conv->standardized_weight().detach();
  CHECK(torch::allclose(ws, expected_w, 1e-5, 1e-6));
  CHECK(ws.reshape({6, -1}).mean(1).abs().max().item<double>() < 1e-6);
  // Variance 1 up to eps: var / (var + 1e-5) exactly (9 weights per channel can have a small variance).
  const torch::Tensor raw_var = flat.var(1, false);
  CHECK(torch::allclose(ws.reshape({6, -1}).var(1, false), raw_var / (raw_var + 1e-5), 1e-5, 1e-6));

  const torch::Tensor y = conv->forward(x);
  CHECK(torch::allclose(y, torch::conv2d(x, expected_w, conv->bias, 2, 2, 2, 3), 1e-4, 1e-5));
  // The output ignores the weights' offset and scale per output channel; gradients still reach them.
  torch::NoGradGuard no_grad;
  conv->weight.mul_(3.5).add_(0.25);
  CHECK(torch::allclose(conv->forward(x), y, 1e-3, 1e-4));  // up to eps = 1e-5 in the variance
}

TEST_CASE("conv standardize: true trains: gradients reach the stored weight and a step lowers the loss") {
  const ExperimentSpec spec =
      model_of("    - conv: {out: 4, padding: 1, standardize: true}\n    - gap\n    - linear: 3\n",
               "  input: [2, 6, 6]\n  classes: 3\n  norm: group\n  groups: 2\n");
  torch::manual_seed(5);  // the initial weights too: one fixed case, not a new one per process
  BuiltModel built = build_model(spec.model);
  const torch::Tensor x = torch::randn({16, 2, 6, 6});
  const torch::Tensor target = torch::randint(0, 3, {16}, torch::kLong);
  torch::optim::SGD sgd(built.net->parameters(), torch::optim::SGDOptions(0.1));
  auto loss_of = [&] { return torch::nn::functional::cross_entropy(built.net->forward(x), target); };
  const torch::Tensor before = loss_of();
  before.backward();
  for (const auto& p : built.net->parameters()) CHECK(p.grad().defined());
  sgd.step();
  CHECK(loss_of().item<double>() < before.item<double>());
}

namespace {

struct NormResult {
  torch::Tensor y, dx, dweight, dbias;
};

/// Output and gradients of a norm for a fixed upstream gradient, in double.
NormResult norm_with_grads(
    const std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&)>& norm,
    const torch::Tensor& x, const torch::Tensor& upstream, torch::ScalarType type, at::MemoryFormat format) {
  const int64_t C = x.size(1);
  torch::Tensor in = x.to(type).contiguous(format).detach().requires_grad_();
  torch::Tensor w = torch::linspace(0.5, 1.5, C, torch::TensorOptions().dtype(type)).requires_grad_();
  torch::Tensor b = torch::linspace(-0.2, 0.3, C, torch::TensorOptions().dtype(type)).requires_grad_();
  torch::Tensor y = norm(in, w, b);
  const auto grads = torch::autograd::grad({y}, {in, w, b}, {upstream.to(type).contiguous(format)});
  return {y.to(torch::kDouble), grads[0].to(torch::kDouble), grads[1].to(torch::kDouble), grads[2].to(torch::kDouble)};
}

double relative_error(const torch::Tensor& a, const torch::Tensor& reference) {
  return ((a - reference).norm() / reference.norm()).item<double>();
}

}  // namespace

TEST_CASE(
    "channels-last norm kernels match a float64 reference, output and every gradient, with and without a fused ReLU") {
  torch::manual_seed(3);
  const auto CL = at::MemoryFormat::ChannelsLast, NCHW = at::MemoryFormat::Contiguous;
  using Shape4 = std::vector<int64_t>;
  for (const Shape4& shape : {Shape4{32, 16, 12, 12}, Shape4{8, 32, 5, 5}, Shape4{64, 32, 5, 5}}) {
    // A conv's output: through a ReLU it has exact zeros and a mean as large as
    // its spread (where float sums lose digits). The last shape gets a global
    // pool's gradient, constant over H and W.
    const torch::Tensor z = torch::randn(shape, torch::kDouble) * 3 + 0.5;
    const torch::Tensor upstream =
        shape[0] == 64 ? torch::randn({shape[0], shape[1], 1, 1}, torch::kDouble).expand(shape).contiguous()
                       : torch::randn(shape, torch::kDouble);
    const int64_t C = shape[1];
    for (bool relu : {false, true}) {
      const torch::Tensor x = relu ? z : z.relu();                   // with relu the kernel applies it itself
      for (int64_t groups : {int64_t{0}, int64_t{1}, int64_t{4}}) {  // 0: batch norm
        CAPTURE(groups);
        CAPTURE(relu);
        CAPTURE(shape[2]);
        torch::Tensor running_mean = torch::zeros({C}), running_var = torch::ones({C});
        torch::Tensor ref_mean = torch::zeros({C}, torch::kDouble), ref_var = torch::ones({C}, torch::kDouble);
        torch::Tensor tracked = torch::zeros({}, torch::kLong);
        auto ours = [&](const torch::Tensor& in, const torch::Tensor& w, const torch::Tensor& b) {
          REQUIRE(nhwc_norm_applies(in));
          return groups == 0 ? batch_norm_nhwc(in, w, b, running_mean, running_var, tracked, 0.1, 1e-5, relu)
                             : group_norm_nhwc(in, groups, w, b, 1e-5, relu);
        };
        auto reference = [&](const torch::Tensor& in, const torch::Tensor& w, const torch::Tensor& b) {
          const torch::Tensor v = relu ? torch::relu(in) : in;
          return groups == 0 ? torch::batch_norm(v, w, b, ref_mean, ref_var, true, 0.1, 1e-5, false)
                             : torch::group_norm(v, groups, w, b, 1e-5, false);
        };
        const NormResult got = norm_with_grads(ours, x, upstream, torch::kFloat, CL);
        const NormResult want = norm_with_grads(reference, x, upstream, torch::kDouble, NCHW);
        CHECK(relative_error(got.y, want.y) < 1e-6);
        CHECK(relative_error(got.dx, want.dx) < 1e-5);
        CHECK(relative_error(got.dweight, want.dweight) < 1e-5);
        CHECK(relative_error(got.dbias, want.dbias) < 1e-6);
        CHECK(got.y.is_contiguous(CL));
        if (relu) CHECK(torch::equal(got.dx.eq(0), x.le(0).logical_or(want.dx.eq(0))));  // the ReLU's mask
        if (groups == 0) {  // running statistics as torch::batch_norm keeps them (unbiased variance)
          CHECK(tracked.item<int64_t>() == 1);
          CHECK(relative_error(running_mean.to(torch::kDouble), ref_mean) < 1e-6);
          CHECK(relative_error(running_var.to(torch::kDouble), ref_var) < 1e-6);
        }
      }
    }
  }
}

TEST_CASE("the norm kernels' AVX-512, AVX2 and baseline copies agree within float tolerance") {
  // Each copy is the same C++ compiled for another instruction set; the machine
  // a test runs on picks one, so all that this CPU runs are compared here.
  const std::vector<std::string> isas = norm_kernel_isas();
  REQUIRE(!isas.empty());
  CHECK(isas.back() == "default");  // baseline x86-64 (or the only copy elsewhere) runs anywhere
  MESSAGE("norm kernel copies this CPU runs: " << join(isas) << "; in use: " << norm_kernel_isa());
  struct Restore {
    std::string isa = norm_kernel_isa();
    ~Restore() { set_norm_kernel_isa(isa); }
  } restore;
  // Channel counts that fill no vector register exactly, odd spatial sizes.
  torch::manual_seed(11);
  const torch::Tensor x = (torch::randn({6, 20, 7, 9}, torch::kDouble) * 2 + 0.3);
  const torch::Tensor upstream = torch::randn({6, 20, 7, 9}, torch::kDouble);
  for (bool relu : {false, true})
    for (int64_t groups : {int64_t{0}, int64_t{1}, int64_t{5}}) {  // 0: batch norm
      CAPTURE(relu);
      CAPTURE(groups);
      std::vector<NormResult> results;
      for (const auto& isa : isas) {
        set_norm_kernel_isa(isa);
        REQUIRE(norm_kernel_isa() == isa);
        torch::Tensor running_mean = torch::zeros({20}), running_var = torch::ones({20});
        torch::Tensor tracked = torch::zeros({}, torch::kLong);
        auto ours = [&](const torch::Tensor& in, const torch::Tensor& w, const torch::Tensor& b) {
          return groups == 0 ? batch_norm_nhwc(in, w, b, running_mean, running_var, tracked, 0.1, 1e-5, relu)
                             : group_norm_nhwc(in, groups, w, b, 1e-5, relu);
        };
        results.push_back(norm_with_grads(ours, x, upstream, torch::kFloat, at::MemoryFormat::ChannelsLast));
      }
      for (size_t i = 1; i < results.size(); ++i) {
        CAPTURE(isas[i]);
        CHECK(relative_error(results[i].y, results[0].y) < 1e-6);
        CHECK(relative_error(results[i].dx, results[0].dx) < 1e-6);
        CHECK(relative_error(results[i].dweight, results[0].dweight) < 1e-6);
        CHECK(relative_error(results[i].dbias, results[0].dbias) < 1e-6);
      }
    }
  const std::string unknown = test_util::error_of<ConfigError>([] { set_norm_kernel_isa("avx3"); });
  CHECK(unknown.find("avx3: no such copy of the norm kernels; this CPU runs: " + join(isas)) != std::string::npos);
}

TEST_CASE("a ReLU before a norm runs fused in channels-last, with the same result as unfused") {
  torch::manual_seed(5);
  const ExperimentSpec spec = load_experiment(test_util::source_path("experiments/session8/gn.yaml"));
  BuiltModel built = build_model(spec.model);
  built.net->train();
  const torch::Tensor x = torch::randn({8, 3, 32, 32}).contiguous(at::MemoryFormat::ChannelsLast);
  // The same layers one by one (as the plan check runs them) never fuse.
  torch::Tensor unfused = x;
  for (auto& layer : *built.net->layers()) unfused = layer.forward(unfused);
  const torch::Tensor fused = built.net->forward(x);
  CHECK(torch::allclose(fused, unfused.flatten(1), 1e-4, 1e-5));
  auto* norm = dynamic_cast<FusesPrecedingRelu*>(built.net->layers()->ptr(2).get());
  REQUIRE(norm != nullptr);
  CHECK(norm->fuses_relu(torch::randn({2, 16, 4, 4}).contiguous(at::MemoryFormat::ChannelsLast)));
  CHECK_FALSE(norm->fuses_relu(torch::randn({2, 16, 4, 4})));  // NCHW: LibTorch's kernels
}

TEST_CASE("the norm modules are torch::nn's: same parameter and buffer names, values, and NCHW results") {
  torch::manual_seed(4);
  const torch::Tensor x = torch::randn({4, 8, 6, 6});
  BatchNorm2d ours(8);
  torch::nn::BatchNorm2d stock(8);
  const auto names = [](const torch::nn::Module& m) {
    std::vector<std::string> all;
    for (const auto& p : m.named_parameters())
      all.push_back("param " + p.key() + " " + std::to_string(p.value().sum().item<double>()));
    for (const auto& b : m.named_buffers())
      all.push_back("buffer " + b.key() + " " + std::to_string(b.value().sum().item<double>()));
    return all;
  };
  CHECK(names(*ours) == names(*stock));
  CHECK(torch::equal(ours(x), stock(x)));  // NCHW takes LibTorch's kernel
  CHECK(names(*ours) == names(*stock));    // running statistics updated alike
  ours->eval(), stock->eval();
  CHECK(torch::equal(ours(x), stock(x)));
  CHECK(torch::allclose(ours(x.contiguous(at::MemoryFormat::ChannelsLast)), stock(x), 1e-6, 1e-6));

  GroupNorm ours_group(2, 8);
  torch::nn::GroupNorm stock_group(torch::nn::GroupNormOptions(2, 8));
  CHECK(names(*ours_group) == names(*stock_group));
  CHECK(torch::equal(ours_group(x), stock_group(x)));
  CHECK(torch::allclose(ours_group(x.contiguous(at::MemoryFormat::ChannelsLast)), stock_group(x), 1e-5, 1e-6));
}

TEST_CASE(
    "a norm and an activation added as one file (tests/layers/test_only_layers.cpp) are valid everywhere their kind is "
    "named") {
  // model.norm, model.block, a conv's norm, a norm layer's type, a layer of its own, and a conv's own block
  const ExperimentSpec spec = model_of(
      "    - conv: {out: 8, padding: 1}\n"
      "    - conv: {out: 8, padding: 1, norm: batch}\n"
      "    - conv: {out: 8, padding: 1, norm: test_scale, block: [conv, norm, test_softsign]}\n"
      "    - norm: {type: test_scale}\n"
      "    - test_softsign\n"
      "    - gap\n"
      "    - linear: 10\n",
      "  norm: test_scale\n  block: [conv, test_softsign, norm]\n");
  std::vector<std::string> rows;
  const BuiltModel built = build_model(spec.model);
  for (const auto& row : built.plan.rows) rows.push_back(row.type_name);
  rows.resize(rows.size() - 2);  // gap, linear
  CHECK(rows == std::vector<std::string>{"Conv2d", "Softsign", "TestScale", "Conv2d", "Softsign", "BatchNorm2d",
                                         "Conv2d", "TestScale", "Softsign", "TestScale", "Softsign"});
  check_plan_matches_module(spec);
  // The registry is where a wrong name's error finds the valid ones.
  const std::string error = test_util::error_of<ConfigError>([] { model_of("    - norm: {type: test_scal}\n"); });
  CHECK(error.find("did you mean 'test_scale'?") != std::string::npos);
  const std::string block_error =
      test_util::error_of<ConfigError>([] { model_of("    - conv: {out: 8}\n", "  block: [conv, softsign]\n"); });
  CHECK(block_error.find("test_softsign") != std::string::npos);
}

TEST_CASE("whiten: its frozen filters count against the budget and show as non-trainable, only as the first layer") {
  const ExperimentSpec spec = parse_experiment(R"(name: w
model:
  layers:
    - whiten
    - relu
    - conv: {out: 8, kernel: 3, padding: 1}
    - gap
    - linear: 10
train: {epochs: 1}
)",
                                               "w.yaml");
  const BuiltModel built = build_model(spec.model);  // the module's counts agree with the plan, trainable and all
  const std::string summary = format_summary(built.plan);
  CHECK(summary.find("Total params: 2,146\nTrainable params: 1,858\nNon-trainable params: 288\n") != std::string::npos);
  CHECK(count_trainable_params(*built.net) == 1858);
  BudgetSpec budget;
  budget.max_params = 2000;  // 1,858 trainable would fit; all 2,146 do not
  CHECK_THROWS_AS(check_param_budget(built.plan, budget), BudgetError);
  CHECK_THROWS_WITH_AS(
      parse_experiment("name: w\nmodel:\n  layers:\n    - conv: {out: 8}\n    - whiten\n    - gap\n"
                       "    - linear: 10\ntrain: {epochs: 1}\n",
                       "w.yaml"),
      "w.yaml:5:7: key 'model.layers.1.whiten': whiten must be the model's first layer: its filters come "
      "from the training images' patches",
      ConfigError);
}
