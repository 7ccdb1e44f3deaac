// PortableNet → a readable torch.nn.Module (model.py) and its state dict
// (weights.pt). Standard torch.nn layers throughout, so the module trains in
// Python too; three small helper classes for what torch.nn has no layer for
// (a residual sum, a concatenation, squeeze-and-excitation), written only when used.
#include <charconv>
#include <set>
#include <sstream>

#include "runner/export/export.h"

namespace runner {
namespace {

/// Python's repr of a float: the shortest text that reads back as the same double.
std::string py_float(double v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  std::string s(buf, r.ptr);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

std::string py_pair(int64_t a, int64_t b) {
  return a == b ? std::to_string(a) : "(" + std::to_string(a) + ", " + std::to_string(b) + ")";
}

const char* kHelpers[][2] = {
    {"Residual",
     "class Residual(nn.Module):\n"
     "    \"\"\"y = body(x) + x, or body(x) + projection(x) with a 1x1 projection.\"\"\"\n\n"
     "    def __init__(self, body, projection=None):\n"
     "        super().__init__()\n"
     "        self.body = body\n"
     "        self.projection = projection\n\n"
     "    def forward(self, x):\n"
     "        return self.body(x) + (x if self.projection is None else self.projection(x))\n"},
    {"Concat",
     "class Concat(nn.Module):\n"
     "    \"\"\"Parallel branches on the same input, joined along the channels.\"\"\"\n\n"
     "    def __init__(self, *branches):\n"
     "        super().__init__()\n"
     "        self.branches = nn.ModuleList(branches)\n\n"
     "    def forward(self, x):\n"
     "        return torch.cat([branch(x) for branch in self.branches], 1)\n"},
    {"SqueezeExcite",
     "class SqueezeExcite(nn.Module):\n"
     "    \"\"\"Each channel scaled by a gate from the whole map (Hu et al. 2018).\"\"\"\n\n"
     "    def __init__(self, channels, hidden):\n"
     "        super().__init__()\n"
     "        self.squeeze = nn.Conv2d(channels, hidden, 1)\n"
     "        self.excite = nn.Conv2d(hidden, channels, 1)\n\n"
     "    def forward(self, x):\n"
     "        gate = torch.sigmoid(self.excite(torch.relu(self.squeeze(x.mean((2, 3), keepdim=True)))))\n"
     "        return x * gate\n"},
    {"Normalize",
     "class Normalize(nn.Module):\n"
     "    \"\"\"Pixels in [0, 1] to the normalized input the network was trained on.\"\"\"\n\n"
     "    def __init__(self, mean, std):\n"
     "        super().__init__()\n"
     "        self.register_buffer(\"mean\", torch.tensor(mean).view(3, 1, 1))\n"
     "        self.register_buffer(\"std\", torch.tensor(std).view(3, 1, 1))\n\n"
     "    def forward(self, x):\n"
     "        return (x - self.mean) / self.std\n"},
};

class Writer {
 public:
  std::vector<std::pair<std::string, torch::Tensor>> state;
  std::set<std::string> helpers;

  void tensors(const PortableModule& m, const std::string& path) {
    for (const auto& [key, t] : m.tensors) state.emplace_back(path + "." + key, t);
    if (m.kind == "BatchNorm2d")
      state.emplace_back(path + ".num_batches_tracked", torch::tensor(m.ints.at("num_batches_tracked"), torch::kLong));
  }

  /// The Python expression that builds `m`; its weights go to the state dict under `path`.
  std::string expr(const PortableModule& m, const std::string& path, const std::string& indent) {
    const std::string& k = m.kind;
    const auto& i = m.ints;
    tensors(m, path);
    if (k == "Conv2d") {
      std::string s = "nn.Conv2d(" + std::to_string(i.at("in")) + ", " + std::to_string(i.at("out")) +
                      ", kernel_size=" + py_pair(i.at("kernel_h"), i.at("kernel_w"));
      if (i.at("stride") != 1) s += ", stride=" + std::to_string(i.at("stride"));
      if (i.at("padding") != 0) s += ", padding=" + std::to_string(i.at("padding"));
      if (i.at("dilation") != 1) s += ", dilation=" + std::to_string(i.at("dilation"));
      if (i.at("groups") != 1) s += ", groups=" + std::to_string(i.at("groups"));
      return s + ", bias=" + (m.tensor("bias") ? "True" : "False") + ")";
    }
    if (k == "BatchNorm2d")
      return "nn.BatchNorm2d(" + std::to_string(i.at("channels")) + ", eps=" + py_float(m.reals.at("eps")) + ")";
    if (k == "GroupNorm")
      return "nn.GroupNorm(" + std::to_string(i.at("groups")) + ", " + std::to_string(i.at("channels")) +
             ", eps=" + py_float(m.reals.at("eps")) + ")";
    if (k == "ReLU" || k == "GELU" || k == "SiLU" || k == "Tanh") return "nn." + k + "()";
    if (k == "LeakyReLU") return "nn.LeakyReLU(negative_slope=" + py_float(m.reals.at("slope")) + ")";
    if (k == "ELU") return "nn.ELU(alpha=" + py_float(m.reals.at("alpha")) + ")";
    if (k == "MaxPool2d" || k == "AvgPool2d") {
      std::string s = "nn." + k + "(kernel_size=" + py_pair(i.at("kernel_h"), i.at("kernel_w")) +
                      ", stride=" + std::to_string(i.at("stride"));
      if (i.at("padding") != 0) s += ", padding=" + std::to_string(i.at("padding"));
      return s + ")";
    }
    if (k == "Dropout") return "nn.Dropout(p=" + py_float(m.reals.at("p")) + ")";
    if (k == "Linear")
      return "nn.Linear(" + std::to_string(i.at("in")) + ", " + std::to_string(i.at("out")) +
             ", bias=" + (m.tensor("bias") ? "True" : "False") + ")";
    if (k == "Residual") {
      helpers.insert("Residual");
      std::string s = "Residual(\n" + indent + "    " + sequential(m.stacks[0], path + ".body", indent + "    ");
      if (m.stacks.size() > 1)
        s += ",\n" + indent + "    projection=" + expr(m.stacks[1][0], path + ".projection", indent + "    ");
      return s + ",\n" + indent + ")";
    }
    if (k == "Concat") {
      helpers.insert("Concat");
      std::string s = "Concat(\n";
      for (size_t b = 0; b < m.stacks.size(); ++b)
        s +=
            indent + "    " + sequential(m.stacks[b], path + ".branches." + std::to_string(b), indent + "    ") + ",\n";
      return s + indent + ")";
    }
    if (k == "SqueezeExcite") {
      helpers.insert("SqueezeExcite");
      for (const auto& conv : m.stacks[0]) tensors(conv, path + "." + conv.name);
      return "SqueezeExcite(" + std::to_string(i.at("channels")) + ", " + std::to_string(i.at("hidden")) + ")";
    }
    throw std::logic_error("pytorch export: no mapping for module kind " + k);
  }

  std::string sequential(const std::vector<PortableModule>& stack, const std::string& path, const std::string& indent) {
    std::string s = "nn.Sequential(OrderedDict([\n";
    for (const auto& m : stack) {
      if (m.kind == "Linear") s += indent + "    (\"flatten_" + m.name.substr(7) + "\", nn.Flatten()),\n";
      s += indent + "    (\"" + m.name + "\", " + expr(m, path + "." + m.name, indent + "    ") + "),\n";
    }
    return s + indent + "]))";
  }
};

}  // namespace

PytorchExport pytorch_export(const PortableNet& net, const ExportInfo& info) {
  Writer w;
  std::ostringstream init, forward;
  if (info.raw_input) {
    w.helpers.insert("Normalize");
    init << "        self.normalize = Normalize(mean=(" << py_float(net.mean[0]) << ", " << py_float(net.mean[1])
         << ", " << py_float(net.mean[2]) << "), std=(" << py_float(net.std[0]) << ", " << py_float(net.std[1]) << ", "
         << py_float(net.std[2]) << "))\n";
    forward << "        x = self.normalize(x)\n";
    const torch::Tensor mean = torch::tensor({net.mean[0], net.mean[1], net.mean[2]}, torch::kFloat).view({3, 1, 1});
    const torch::Tensor std = torch::tensor({net.std[0], net.std[1], net.std[2]}, torch::kFloat).view({3, 1, 1});
    w.state.emplace_back("normalize.mean", mean);
    w.state.emplace_back("normalize.std", std);
  }
  for (const auto& m : net.layers) {
    init << "        self." << m.name << " = " << w.expr(m, m.name, "        ") << "\n";
    if (m.kind == "Conv2d" && m.ints.count("frozen"))
      init << "        self." << m.name << ".requires_grad_(False)  # whiten: computed from the data, never trained\n";
    if (m.kind == "Dropout") {
      forward << "        x = self." << m.name << "(x)  # the identity in eval mode\n";
    } else if (m.kind == "Linear") {
      forward << "        x = self." << m.name << "(torch.flatten(x, 1))\n";
    } else {
      forward << "        x = self." << m.name << "(x)\n";
    }
  }
  std::ostringstream py;
  py << "# Generated by `runner export --format pytorch` from run " << info.run_id << " (" << info.run_name
     << "), config hash " << info.config_hash << ".\n"
     << "# The network as runner built it, in eval-mode form: weight-standardized convs hold their\n"
     << "# standardized weights, a whiten layer is a fixed Conv2d. Module names follow the rows of\n"
     << "# `runner check`'s summary table.\n"
     << "# Input: float32 [N, " << net.input[0] << ", " << net.input[1] << ", " << net.input[2] << "], "
     << (info.raw_input ? "RGB pixels scaled to [0, 1] (the model normalizes them itself)."
                        : "normalized: (pixel / 255 - mean) / std, mean (" + py_float(net.mean[0]) + ", " +
                              py_float(net.mean[1]) + ", " + py_float(net.mean[2]) + "), std (" + py_float(net.std[0]) +
                              ", " + py_float(net.std[1]) + ", " + py_float(net.std[2]) + ").")
     << "\n# Output: " << net.classes << " logits per image.\n"
     << "from collections import OrderedDict\n\nimport torch\nfrom torch import nn\n\n";
  std::string classes = "[";
  for (size_t i = 0; i < info.class_names.size(); ++i) classes += (i ? ", \"" : "\"") + info.class_names[i] + "\"";
  py << "CLASSES = " << classes << "]\n\n\n";
  for (const auto& helper : kHelpers)
    if (w.helpers.count(helper[0])) py << helper[1] << "\n\n";
  py << "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
     << init.str() << "\n    def forward(self, x):\n"
     << forward.str() << "        return torch.flatten(x, 1)\n";

  PytorchExport out;
  out.model_py = py.str();
  out.weights_pt = pickle_state_dict(w.state);
  out.readme =
      "# Run " + std::to_string(info.run_id) + " (" + info.run_name + ") as a PyTorch module\n\n" +
      "Exported by `runner export --format pytorch`; test accuracy recorded by the runner: " +
      (info.test_acc.empty() ? std::string("none") : info.test_acc + " %") + " after " + std::to_string(info.epochs) +
      " epochs.\n\n```python\n" +
      "from model import Net, CLASSES\n"
      "net = Net(); net.load_state_dict(torch.load(\"weights.pt\")); net.eval()\n"
      "print(CLASSES[net(x).argmax(1)[0]])  # x: " +
      (info.raw_input ? "float32 [N, 3, H, W] pixels in [0, 1]" : "float32 [N, 3, H, W] normalized as model.py says") +
      "\n```\n\n`import torch` first. The module trains too: `net.train()` and any optimizer.\n";
  return out;
}

}  // namespace runner
