// PortableNet → ONNX with Debian's libonnx protobuf classes. Opset 17 and IR 8:
// the newest Debian 12's libonnx 1.12 checks (Debian 13 has 1.17), so a model
// written on either loads in every current runtime.
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <cmath>
#include <stdexcept>

#include "runner/export/export.h"
#include "runner_version.h"

namespace runner {
namespace {

constexpr int64_t kOpset = 17;
constexpr int64_t kIrVersion = 8;

class GraphWriter {
 public:
  explicit GraphWriter(onnx::GraphProto& graph) : graph_(graph) {}

  /// A weight as an initializer, named `name`.
  std::string weight(const std::string& name, const torch::Tensor& t) {
    onnx::TensorProto* init = graph_.add_initializer();
    init->set_name(name);
    init->set_data_type(onnx::TensorProto::FLOAT);
    for (const int64_t d : t.sizes()) init->add_dims(d);
    const torch::Tensor c = t.to(torch::kFloat).contiguous();
    init->set_raw_data(c.data_ptr(), static_cast<size_t>(c.numel()) * sizeof(float));
    return name;
  }
  std::string ints(const std::string& name, const std::vector<int64_t>& values) {
    onnx::TensorProto* init = graph_.add_initializer();
    init->set_name(name);
    init->set_data_type(onnx::TensorProto::INT64);
    init->add_dims(static_cast<int64_t>(values.size()));
    for (const int64_t v : values) init->add_int64_data(v);
    return name;
  }
  std::string scalar(const std::string& name, float value) { return weight(name, torch::tensor({value})); }

  onnx::NodeProto& node(const std::string& op, const std::vector<std::string>& inputs, const std::string& output) {
    onnx::NodeProto* n = graph_.add_node();
    n->set_op_type(op);
    n->set_name(output);
    for (const auto& in : inputs) n->add_input(in);
    n->add_output(output);
    return *n;
  }

 private:
  onnx::GraphProto& graph_;
};

void attr(onnx::NodeProto& n, const std::string& name, const std::vector<int64_t>& values) {
  onnx::AttributeProto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (const int64_t v : values) a->add_ints(v);
}
void attr(onnx::NodeProto& n, const std::string& name, int64_t value) {
  onnx::AttributeProto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(value);
}
void attr(onnx::NodeProto& n, const std::string& name, double value) {
  onnx::AttributeProto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(static_cast<float>(value));
}

/// Emits the nodes of a stack; returns the name of its output.
std::string emit_stack(GraphWriter& g, const std::vector<PortableModule>& stack, std::string x,
                       const std::string& scope);

std::string emit_conv(GraphWriter& g, const PortableModule& m, const std::string& x, const std::string& name) {
  std::vector<std::string> inputs{x, g.weight(name + ".weight", *m.tensor("weight"))};
  if (const torch::Tensor* bias = m.tensor("bias")) inputs.push_back(g.weight(name + ".bias", *bias));
  onnx::NodeProto& n = g.node("Conv", inputs, name);
  const int64_t p = m.ints.at("padding"), s = m.ints.at("stride"), d = m.ints.at("dilation");
  attr(n, "kernel_shape", {m.ints.at("kernel_h"), m.ints.at("kernel_w")});
  attr(n, "strides", {s, s});
  attr(n, "pads", {p, p, p, p});
  attr(n, "dilations", {d, d});
  attr(n, "group", m.ints.at("groups"));
  return name;
}

std::string emit(GraphWriter& g, const PortableModule& m, const std::string& x, const std::string& scope) {
  const std::string name = scope + m.name;
  const std::string& k = m.kind;
  if (k == "Conv2d") return emit_conv(g, m, x, name);
  if (k == "BatchNorm2d") {
    onnx::NodeProto& n =
        g.node("BatchNormalization",
               {x, g.weight(name + ".weight", *m.tensor("weight")), g.weight(name + ".bias", *m.tensor("bias")),
                g.weight(name + ".running_mean", *m.tensor("running_mean")),
                g.weight(name + ".running_var", *m.tensor("running_var"))},
               name);
    attr(n, "epsilon", m.reals.at("eps"));
    return name;
  }
  if (k == "GroupNorm") {
    // Opset 17 has no GroupNormalization: normalize each group as one instance,
    // then the per-channel affine.
    const int64_t groups = m.ints.at("groups"), c = m.in[0];
    g.node("Reshape", {x, g.ints(name + ".grouped_shape", {0, groups, -1})}, name + ".grouped");
    onnx::NodeProto& n = g.node("InstanceNormalization",
                                {name + ".grouped", g.weight(name + ".ones", torch::ones({groups})),
                                 g.weight(name + ".zeros", torch::zeros({groups}))},
                                name + ".normalized");
    attr(n, "epsilon", m.reals.at("eps"));
    g.node("Reshape", {name + ".normalized", g.ints(name + ".shape", {0, c, m.in[1], m.in[2]})}, name + ".ungrouped");
    g.node("Mul", {name + ".ungrouped", g.weight(name + ".weight", m.tensor("weight")->view({c, 1, 1}))},
           name + ".scaled");
    g.node("Add", {name + ".scaled", g.weight(name + ".bias", m.tensor("bias")->view({c, 1, 1}))}, name);
    return name;
  }
  if (k == "ReLU") return g.node("Relu", {x}, name).output(0);
  if (k == "Tanh") return g.node("Tanh", {x}, name).output(0);
  if (k == "LeakyReLU") {
    attr(g.node("LeakyRelu", {x}, name), "alpha", m.reals.at("slope"));
    return name;
  }
  if (k == "ELU") {
    attr(g.node("Elu", {x}, name), "alpha", m.reals.at("alpha"));
    return name;
  }
  if (k == "SiLU") {
    g.node("Sigmoid", {x}, name + ".sigmoid");
    return g.node("Mul", {x, name + ".sigmoid"}, name).output(0);
  }
  if (k == "GELU") {  // the exact GELU, as torch's default: x · (1 + erf(x / √2)) / 2
    g.node("Div", {x, g.scalar(name + ".sqrt2", static_cast<float>(std::sqrt(2.0)))}, name + ".scaled");
    g.node("Erf", {name + ".scaled"}, name + ".erf");
    g.node("Add", {name + ".erf", g.scalar(name + ".one", 1.0f)}, name + ".erf1");
    g.node("Mul", {x, name + ".erf1"}, name + ".product");
    return g.node("Mul", {name + ".product", g.scalar(name + ".half", 0.5f)}, name).output(0);
  }
  if (k == "MaxPool2d" || k == "AvgPool2d") {
    onnx::NodeProto& n = g.node(k == "MaxPool2d" ? "MaxPool" : "AveragePool", {x}, name);
    const int64_t p = m.ints.at("padding"), s = m.ints.at("stride");
    attr(n, "kernel_shape", {m.ints.at("kernel_h"), m.ints.at("kernel_w")});
    attr(n, "strides", {s, s});
    attr(n, "pads", {p, p, p, p});
    // LibTorch's AvgPool2d divides by the whole window, padded zeros included.
    if (k == "AvgPool2d") attr(n, "count_include_pad", int64_t{1});
    return name;
  }
  if (k == "Dropout") return x;  // eval mode: the identity
  if (k == "Linear") {
    attr(g.node("Flatten", {x}, name + ".flat"), "axis", int64_t{1});
    std::vector<std::string> inputs{name + ".flat", g.weight(name + ".weight", *m.tensor("weight"))};
    if (const torch::Tensor* bias = m.tensor("bias")) inputs.push_back(g.weight(name + ".bias", *bias));
    attr(g.node("Gemm", inputs, name), "transB", int64_t{1});
    return name;
  }
  if (k == "Residual") {
    const std::string body = emit_stack(g, m.stacks[0], x, name + ".");
    const std::string skip = m.stacks.size() > 1 ? emit(g, m.stacks[1][0], x, name + ".projection.") : x;
    return g.node("Add", {body, skip}, name).output(0);
  }
  if (k == "Concat") {
    std::vector<std::string> outs;
    for (size_t i = 0; i < m.stacks.size(); ++i)
      outs.push_back(emit_stack(g, m.stacks[i], x, name + ".branch" + std::to_string(i) + "."));
    attr(g.node("Concat", outs, name), "axis", int64_t{1});
    return name;
  }
  if (k == "SqueezeExcite") {
    onnx::NodeProto& mean = g.node("ReduceMean", {x}, name + ".pooled");
    attr(mean, "axes", std::vector<int64_t>{2, 3});
    attr(mean, "keepdims", int64_t{1});
    const std::string squeezed = emit_conv(g, m.stacks[0][0], name + ".pooled", name + ".squeeze");
    g.node("Relu", {squeezed}, name + ".squeeze_relu");
    const std::string excited = emit_conv(g, m.stacks[0][1], name + ".squeeze_relu", name + ".excite");
    g.node("Sigmoid", {excited}, name + ".gate");
    return g.node("Mul", {x, name + ".gate"}, name).output(0);
  }
  throw std::logic_error("onnx export: no mapping for module kind " + k);
}

std::string emit_stack(GraphWriter& g, const std::vector<PortableModule>& stack, std::string x,
                       const std::string& scope) {
  for (const auto& m : stack) x = emit(g, m, x, scope);
  return x;
}

void set_float_value_info(onnx::ValueInfoProto& v, const std::string& name, const std::vector<int64_t>& dims) {
  v.set_name(name);
  onnx::TypeProto_Tensor* t = v.mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  onnx::TensorShapeProto_Dimension* batch = t->mutable_shape()->add_dim();
  batch->set_dim_param("batch");
  for (const int64_t d : dims) t->mutable_shape()->add_dim()->set_dim_value(d);
}

void metadata(onnx::ModelProto& model, const std::string& key, const std::string& value) {
  onnx::StringStringEntryProto* e = model.add_metadata_props();
  e->set_key(key);
  e->set_value(value);
}

}  // namespace

std::string onnx_model_bytes(const PortableNet& net, const ExportInfo& info) {
  onnx::ModelProto model;
  model.set_ir_version(kIrVersion);
  model.set_producer_name("runner");
  model.set_producer_version(RUNNER_VERSION);
  model.set_model_version(1);
  model.set_doc_string("run " + std::to_string(info.run_id) + " (" + info.run_name + ") exported by runner export");
  onnx::OperatorSetIdProto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOpset);
  onnx::GraphProto& graph = *model.mutable_graph();
  graph.set_name(info.run_name.empty() ? "runner" : info.run_name);
  GraphWriter g(graph);
  set_float_value_info(*graph.add_input(), "input", net.input);
  std::string x = "input";
  if (info.raw_input) {  // exactly the runner's normalize: (pixel - mean) / std in float32
    torch::Tensor mean = torch::tensor({net.mean[0], net.mean[1], net.mean[2]}, torch::kFloat).view({3, 1, 1});
    torch::Tensor std = torch::tensor({net.std[0], net.std[1], net.std[2]}, torch::kFloat).view({3, 1, 1});
    g.node("Sub", {x, g.weight("normalize.mean", mean)}, "normalize.centred");
    x = g.node("Div", {"normalize.centred", g.weight("normalize.std", std)}, "normalize").output(0);
  }
  x = emit_stack(g, net.layers, x, "");
  attr(g.node("Flatten", {x}, "logits"), "axis", int64_t{1});
  set_float_value_info(*graph.add_output(), "logits", {net.classes});

  metadata(model, "runner.run_id", std::to_string(info.run_id));
  metadata(model, "runner.run_name", info.run_name);
  metadata(model, "runner.config_hash", info.config_hash);
  metadata(model, "runner.config_yaml", info.config_yaml);
  std::string classes;
  for (size_t i = 0; i < info.class_names.size(); ++i) classes += (i ? "," : "") + info.class_names[i];
  metadata(model, "runner.class_names", classes);
  metadata(model, "runner.test_acc", info.test_acc);
  metadata(model, "runner.epochs", std::to_string(info.epochs));
  metadata(model, "runner.input",
           info.raw_input
               ? "float32 NCHW, RGB pixels scaled to [0, 1]"
               : "float32 NCHW, normalized: (pixel / 255 - mean) / std with mean " + std::to_string(net.mean[0]) + "," +
                     std::to_string(net.mean[1]) + "," + std::to_string(net.mean[2]) + " and std " +
                     std::to_string(net.std[0]) + "," + std::to_string(net.std[1]) + "," + std::to_string(net.std[2]));

  try {
    onnx::checker::check_model(model);
    onnx::ModelProto inferred = model;
    onnx::shape_inference::InferShapes(inferred, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(/*check_type=*/true, /*strict=*/1));
  } catch (const std::exception& e) {
    throw std::logic_error(std::string("the exported ONNX model fails onnx's own checks (a bug in the exporter): ") +
                           e.what());
  }
  std::string bytes;
  if (!model.SerializeToString(&bytes)) throw std::logic_error("onnx export: the model did not serialize");
  return bytes;
}

}  // namespace runner
