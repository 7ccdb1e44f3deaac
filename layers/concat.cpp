// concat: parallel branches on the same input, joined along the channels
// (Inception- and DenseNet-like blocks). Each item is a `branch`, a stack of
// layers of its own; every branch must end at the same height and width.
//
//   - concat:
//       - branch: [{conv: {out: 16, kernel: 1}}]
//       - branch:
//           - conv: {out: 8, kernel: 1}
//           - conv: {out: 16, kernel: 3, padding: 1}
//       - branch: [{maxpool: {kernel: 3, stride: 1, padding: 1}}]
//
//   - branch: [...]      # on its own: a plain sub-stack (the layers one after another)
//
// concat: layers (required, at least two branches). branch: layers (required).
// Summary rows: each branch's rows in order, then Concat (no parameters).
#include "layers/layer_util.h"
#include "layers/registry.h"

namespace runner {
namespace {

class BranchImpl : public torch::nn::Module {
 public:
  explicit BranchImpl(torch::nn::Sequential body) : body_(register_module("body", std::move(body))) {}
  torch::Tensor forward(const torch::Tensor& x) { return forward_layers(body_, x); }

 private:
  torch::nn::Sequential body_;
};
TORCH_MODULE(Branch);

class ConcatImpl : public torch::nn::Module {
 public:
  explicit ConcatImpl(std::vector<Branch> branches) {
    for (size_t i = 0; i < branches.size(); ++i)
      branches_.push_back(register_module("branch" + std::to_string(i), std::move(branches[i])));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    std::vector<torch::Tensor> outs;
    for (auto& branch : branches_) outs.push_back(branch->forward(x));
    return torch::cat(outs, 1);
  }

 private:
  std::vector<Branch> branches_;
};
TORCH_MODULE(Concat);

LayerDef branch_def() {
  return LayerDef{
      "branch",
      "a stack of layers as one item (a concat branch)",
      {{"layers", OptionKind::Layers, int64_t{0}, Range::Any, {}, true, "the stack"}},
      "layers",
      [](const LayerSpec& spec, const Shape& in, Planner& planner) { return planner.walk(spec.children, in); },
  };
}

LayerDef concat_def() {
  return LayerDef{
      "concat",
      "parallel branches joined along the channels",
      {{"layers", OptionKind::Layers, int64_t{0}, Range::Any, {}, true, "the branches, each a - branch: [...]"}},
      "layers",
      [](const LayerSpec& spec, const Shape& in, Planner& planner) {
        require_feature_map(in, "concat");
        Shape out;
        const LayerSpec* first = nullptr;
        for (const auto& child : spec.children) {
          if (child.type != "branch")
            throw PlanError("each item of concat is a branch (- branch: [layers...]), but " + child.path + " is a " +
                            child.type + " (a conv with a block is several layers: put it in a branch)");
          const Shape shape = planner.walk(child.children, in);
          if (shape.size() != 3)
            throw PlanError(child.path + " ends in " + shape_str(shape) + ", not a [C, H, W] feature map");
          if (first == nullptr) {
            first = &child, out = shape;
          } else if (shape[1] != out[1] || shape[2] != out[2]) {
            throw PlanError("the branches must agree in height and width to be joined on channels: " + first->path +
                            " gives " + shape_str(out) + " but " + child.path + " gives " + shape_str(shape));
          } else {
            out[0] += shape[0];
          }
        }
        if (spec.children.size() < 2) throw PlanError("concat needs at least two branches");
        planner.add_row("Concat", out, 0);
        return out;
      },
  };
}

torch::nn::AnyModule make_branch(const LayerSpec& spec, const Shape& in, ModuleBuilder& builder) {
  Shape out;
  return torch::nn::AnyModule(Branch(builder.build_stack(spec.children, in, out)));
}

torch::nn::AnyModule make_concat(const LayerSpec& spec, const Shape& in, ModuleBuilder& builder) {
  std::vector<Branch> branches;
  for (const auto& child : spec.children) {
    Shape out;
    branches.push_back(Branch(builder.build_stack(child.children, in, out)));
  }
  return torch::nn::AnyModule(Concat(std::move(branches)));
}

}  // namespace
RUNNER_REGISTER_LAYER(branch_def, make_branch);
RUNNER_REGISTER_LAYER(concat_def, make_concat);
}  // namespace runner
