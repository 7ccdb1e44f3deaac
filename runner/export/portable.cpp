#include "runner/export/portable.h"

#include <cctype>
#include <functional>
#include <stdexcept>

#include "layers/layer_def.h"
#include "layers/norm_kernels.h"
#include "layers/standardized_conv.h"

namespace runner {
namespace {

using ModulePtr = std::shared_ptr<torch::nn::Module>;

/// Standard strides, whatever the layout the weight was trained in (see runner/model/weights.cpp).
torch::Tensor plain(const torch::Tensor& t) {
  return t.detach().to(torch::kCPU, torch::kFloat).clone(at::MemoryFormat::Contiguous);
}

/// A parameter or buffer of `module` itself (not of its children).
torch::Tensor own_tensor(const torch::nn::Module& module, const std::string& name) {
  for (const auto& p : module.named_parameters(/*recurse=*/false))
    if (p.key() == name) return p.value();
  for (const auto& b : module.named_buffers(/*recurse=*/false))
    if (b.key() == name) return b.value();
  return {};
}

ModulePtr child(const torch::nn::Module& module, const std::string& name) {
  for (const auto& c : module.named_children())
    if (c.key() == name) return c.value();
  return nullptr;
}

std::string lower_name(const std::string& kind) {
  std::string out;
  for (const char c : kind) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

class Lowerer;
using LowerFn = std::function<void(const LayerSpec&, torch::nn::Module&, const Shape& in, const Shape& out, Lowerer&,
                                   std::vector<PortableModule>&)>;
const std::map<std::string, LowerFn>& layer_table();

class Lowerer {
 public:
  /// A module that is one row of the summary table takes the next row number.
  PortableModule row(const std::string& kind, const Shape& in, const Shape& out) {
    PortableModule m;
    m.kind = kind;
    m.name = lower_name(kind) + "_" + std::to_string(++rows_);
    m.in = in;
    m.out = out;
    return m;
  }
  int64_t next_row() const { return rows_ + 1; }

  std::vector<PortableModule> stack(const std::vector<LayerSpec>& specs, const torch::nn::Module& seq, Shape& shape) {
    std::vector<PortableModule> out;
    const auto modules = seq.children();
    if (modules.size() != specs.size())
      throw std::logic_error("export: " + std::to_string(specs.size()) + " layers but " +
                             std::to_string(modules.size()) + " modules");
    for (size_t i = 0; i < specs.size(); ++i) {
      const auto it = layer_table().find(specs[i].type);
      if (it == layer_table().end())
        throw std::logic_error("export: layer type '" + specs[i].type +
                               "' has no lowering (runner/export/portable.cpp)");
      const Shape next = layer_output_shape(specs[i], shape);
      it->second(specs[i], *modules[i], shape, next, *this, out);
      shape = next;
    }
    return out;
  }

  /// `padding` as built (LibTorch's options hold it as a variant whose type changed with 2.x).
  PortableModule conv(const torch::nn::Conv2dImpl& conv, const Shape& in, const Shape& out, int64_t padding) {
    PortableModule m = row("Conv2d", in, out);
    const auto& o = conv.options;
    m.ints = {{"in", o.in_channels()},
              {"out", o.out_channels()},
              {"kernel_h", (*o.kernel_size())[0]},
              {"kernel_w", (*o.kernel_size())[1]},
              {"stride", (*o.stride())[0]},
              {"padding", padding},
              {"dilation", (*o.dilation())[0]},
              {"groups", o.groups()}};
    m.tensors.emplace_back("weight", plain(conv.weight));
    if (conv.bias.defined()) m.tensors.emplace_back("bias", plain(conv.bias));
    return m;
  }

 private:
  int64_t rows_ = 0;
};

PortableModule simple(Lowerer& l, const std::string& kind, const Shape& in, const Shape& out) {
  return l.row(kind, in, out);
}

void lower_conv(const LayerSpec& spec, torch::nn::Module& module, const Shape& in, const Shape& out, Lowerer& l,
                std::vector<PortableModule>& into) {
  if (auto* conv = dynamic_cast<torch::nn::Conv2dImpl*>(&module)) {
    into.push_back(l.conv(*conv, in, out, spec.get_int("padding")));
    return;
  }
  // Weight standardization is a function of the stored weight alone: folded once,
  // with the layer's own formula, it is the weight every eval forward pass uses.
  auto& sconv = dynamic_cast<StandardizedConv2dImpl&>(module);
  PortableModule m = l.row("Conv2d", in, out);
  const int64_t k = spec.get_int("kernel");
  m.ints = {{"in", in[0]},
            {"out", spec.get_int("out")},
            {"kernel_h", k},
            {"kernel_w", k},
            {"stride", spec.get_int("stride")},
            {"padding", spec.get_int("padding")},
            {"dilation", spec.get_int("dilation")},
            {"groups", spec.get_int("groups")}};
  torch::NoGradGuard no_grad;
  m.tensors.emplace_back("weight", plain(sconv.standardized_weight()));
  if (sconv.bias.defined()) m.tensors.emplace_back("bias", plain(sconv.bias));
  into.push_back(std::move(m));
}

void lower_whiten(const LayerSpec& spec, torch::nn::Module& module, const Shape& in, const Shape& out, Lowerer& l,
                  std::vector<PortableModule>& into) {
  PortableModule m = l.row("Conv2d", in, out);
  const torch::Tensor weight = own_tensor(module, "weight");
  m.ints = {{"in", in[0]},
            {"out", weight.size(0)},
            {"kernel_h", weight.size(2)},
            {"kernel_w", weight.size(3)},
            {"stride", 1},
            {"padding", spec.get_int("padding")},
            {"dilation", 1},
            {"groups", 1},
            {"frozen", 1}};
  m.tensors.emplace_back("weight", plain(weight));
  m.tensors.emplace_back("bias", plain(own_tensor(module, "bias")));
  into.push_back(std::move(m));
}

LowerFn activation(const std::string& kind, const std::string& real_option = "") {
  return [kind, real_option](const LayerSpec& spec, torch::nn::Module&, const Shape& in, const Shape& out, Lowerer& l,
                             std::vector<PortableModule>& into) {
    PortableModule m = simple(l, kind, in, out);
    if (!real_option.empty()) m.reals[real_option] = spec.get_double(real_option);
    into.push_back(std::move(m));
  };
}

int64_t pool_stride(const LayerSpec& spec) {
  const int64_t stride = spec.get_int("stride");
  return stride == 0 ? spec.get_int("kernel") : stride;
}

LowerFn pool(const std::string& kind) {
  return [kind](const LayerSpec& spec, torch::nn::Module&, const Shape& in, const Shape& out, Lowerer& l,
                std::vector<PortableModule>& into) {
    PortableModule m = simple(l, kind, in, out);
    const int64_t k = spec.get_int("kernel");
    m.ints = {{"kernel_h", k}, {"kernel_w", k}, {"stride", pool_stride(spec)}, {"padding", spec.get_int("padding")}};
    into.push_back(std::move(m));
  };
}

LowerFn global_pool(const std::string& kind) {
  return [kind](const LayerSpec&, torch::nn::Module&, const Shape& in, const Shape& out, Lowerer& l,
                std::vector<PortableModule>& into) {
    PortableModule m = simple(l, kind, in, out);
    // A window over the whole map, as the module is built (layers/global_pool.cpp).
    m.ints = {{"kernel_h", in[1]}, {"kernel_w", in[2]}, {"stride", in[1]}, {"padding", 0}};
    into.push_back(std::move(m));
  };
}

void lower_linear(const LayerSpec&, torch::nn::Module& module, const Shape& in, const Shape& out, Lowerer& l,
                  std::vector<PortableModule>& into) {
  const auto linear = std::dynamic_pointer_cast<torch::nn::LinearImpl>(child(module, "linear"));
  PortableModule m = simple(l, "Linear", in, out);
  m.ints = {{"in", linear->options.in_features()}, {"out", linear->options.out_features()}};
  m.tensors.emplace_back("weight", plain(linear->weight));
  if (linear->bias.defined()) m.tensors.emplace_back("bias", plain(linear->bias));
  into.push_back(std::move(m));
}

void lower_dropout(const LayerSpec& spec, torch::nn::Module&, const Shape& in, const Shape& out, Lowerer& l,
                   std::vector<PortableModule>& into) {
  PortableModule m = simple(l, "Dropout", in, out);
  m.reals["p"] = spec.get_double("p");
  into.push_back(std::move(m));
}

using NormLowerFn = std::function<void(torch::nn::Module&, const Shape& in, Lowerer&, std::vector<PortableModule>&)>;

void group_norm(torch::nn::Module& module, const Shape& in, Lowerer& l, std::vector<PortableModule>& into) {
  auto& norm = dynamic_cast<GroupNormImpl&>(module);
  PortableModule m = l.row("GroupNorm", in, in);
  m.ints = {{"groups", norm.groups()}, {"channels", in[0]}};
  m.reals["eps"] = norm.eps();
  m.tensors.emplace_back("weight", plain(norm.weight));
  m.tensors.emplace_back("bias", plain(norm.bias));
  into.push_back(std::move(m));
}

const std::map<std::string, NormLowerFn>& norm_table() {
  static const std::map<std::string, NormLowerFn> table{
      {"batch",
       [](torch::nn::Module& module, const Shape& in, Lowerer& l, std::vector<PortableModule>& into) {
         auto& norm = dynamic_cast<BatchNorm2dImpl&>(module);
         PortableModule m = l.row("BatchNorm2d", in, in);
         m.ints = {{"channels", in[0]}, {"num_batches_tracked", norm.num_batches_tracked.item<int64_t>()}};
         m.reals["eps"] = norm.eps();
         m.tensors.emplace_back("weight", plain(norm.weight));
         m.tensors.emplace_back("bias", plain(norm.bias));
         m.tensors.emplace_back("running_mean", plain(norm.running_mean));
         m.tensors.emplace_back("running_var", plain(norm.running_var));
         into.push_back(std::move(m));
       }},
      {"layer", group_norm},  // GroupNorm(1, C) (layers/norm_layer.cpp)
      {"group", group_norm},
      {"none", [](torch::nn::Module&, const Shape&, Lowerer&, std::vector<PortableModule>&) {}},
  };
  return table;
}

void lower_norm(const LayerSpec& spec, torch::nn::Module& module, const Shape& in, const Shape&, Lowerer& l,
                std::vector<PortableModule>& into) {
  const auto it = norm_table().find(spec.get_string("type"));
  if (it == norm_table().end())
    throw std::logic_error("export: norm '" + spec.get_string("type") +
                           "' has no lowering (runner/export/portable.cpp)");
  it->second(module, in, l, into);
}

void lower_residual(const LayerSpec& spec, torch::nn::Module& module, const Shape& in, const Shape& out, Lowerer& l,
                    std::vector<PortableModule>& into) {
  PortableModule m;
  m.kind = "Residual";
  m.name = "residual_" + std::to_string(l.next_row());
  m.in = in;
  m.out = out;
  Shape shape = in;
  m.stacks.push_back(l.stack(spec.children, *child(module, "body"), shape));
  if (const auto projection = std::dynamic_pointer_cast<torch::nn::Conv2dImpl>(child(module, "projection")))
    m.stacks.push_back({l.conv(*projection, in, out, 0)});
  into.push_back(std::move(m));
}

void lower_branch(const LayerSpec& spec, torch::nn::Module& module, const Shape& in, const Shape&, Lowerer& l,
                  std::vector<PortableModule>& into) {
  Shape shape = in;
  for (auto& m : l.stack(spec.children, *child(module, "body"), shape)) into.push_back(std::move(m));
}

void lower_concat(const LayerSpec& spec, torch::nn::Module& module, const Shape& in, const Shape& out, Lowerer& l,
                  std::vector<PortableModule>& into) {
  std::vector<std::vector<PortableModule>> branches;
  for (size_t i = 0; i < spec.children.size(); ++i) {
    Shape shape = in;
    const ModulePtr branch = child(module, "branch" + std::to_string(i));
    branches.push_back(l.stack(spec.children[i].children, *child(*branch, "body"), shape));
  }
  PortableModule m = l.row("Concat", in, out);
  m.stacks = std::move(branches);
  into.push_back(std::move(m));
}

void lower_se(const LayerSpec&, torch::nn::Module& module, const Shape& in, const Shape& out, Lowerer& l,
              std::vector<PortableModule>& into) {
  PortableModule m = l.row("SqueezeExcite", in, out);
  std::vector<PortableModule> convs;
  for (const char* name : {"squeeze", "excite"}) {
    const auto conv = std::dynamic_pointer_cast<torch::nn::Conv2dImpl>(child(module, name));
    PortableModule c;
    c.kind = "Conv2d";
    c.name = name;
    c.ints = {{"in", conv->options.in_channels()},
              {"out", conv->options.out_channels()},
              {"kernel_h", 1},
              {"kernel_w", 1},
              {"stride", 1},
              {"padding", 0},
              {"dilation", 1},
              {"groups", 1}};
    c.tensors.emplace_back("weight", plain(conv->weight));
    c.tensors.emplace_back("bias", plain(conv->bias));
    convs.push_back(std::move(c));
  }
  m.ints = {{"channels", in[0]}, {"hidden", convs[0].ints["out"]}};
  m.stacks.push_back(std::move(convs));
  into.push_back(std::move(m));
}

const std::map<std::string, LowerFn>& layer_table() {
  static const std::map<std::string, LowerFn> table{
      {"conv", lower_conv},
      {"whiten", lower_whiten},
      {"relu", activation("ReLU")},
      {"gelu", activation("GELU")},
      {"silu", activation("SiLU")},
      {"tanh", activation("Tanh")},
      {"leaky_relu", activation("LeakyReLU", "slope")},
      {"elu", activation("ELU", "alpha")},
      {"maxpool", pool("MaxPool2d")},
      {"avgpool", pool("AvgPool2d")},
      {"gap", global_pool("AvgPool2d")},
      {"gmp", global_pool("MaxPool2d")},
      {"linear", lower_linear},
      {"dropout", lower_dropout},
      {"norm", lower_norm},
      {"residual", lower_residual},
      {"branch", lower_branch},
      {"concat", lower_concat},
      {"se", lower_se},
  };
  return table;
}

}  // namespace

PortableNet lower_network(const ExperimentSpec& spec, Net& net) {
  torch::NoGradGuard no_grad;
  PortableNet out;
  out.input = {spec.model.input[0], spec.model.input[1], spec.model.input[2]};
  out.classes = spec.model.classes;
  for (size_t i = 0; i < 3; ++i) {
    out.mean[i] = spec.data.mean[i];
    out.std[i] = spec.data.std[i];
  }
  Lowerer lowerer;
  Shape shape = out.input;
  out.layers = lowerer.stack(spec.model.layers, *net->layers(), shape);
  return out;
}

std::vector<std::string> lowered_layer_types() {
  std::vector<std::string> names;
  for (const auto& [name, fn] : layer_table()) names.push_back(name);
  return names;
}

std::vector<std::string> lowered_norm_types() {
  std::vector<std::string> names;
  for (const auto& [name, fn] : norm_table()) names.push_back(name);
  return names;
}

}  // namespace runner
