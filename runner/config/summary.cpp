#include "runner/config/summary.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "layers/layer_util.h"
#include "runner/base/text.h"

namespace runner {

namespace {
std::string row(const std::string& a, const std::string& b, const std::string& c) {
  char line[256];
  std::snprintf(line, sizeof line, "%20s  %25s %15s\n", a.c_str(), b.c_str(), c.c_str());
  return line;
}
std::string megabytes(const char* label, double mb) {
  char line[128];
  std::snprintf(line, sizeof line, "%s: %0.2f\n", label, mb);
  return line;
}
}  // namespace

std::string format_summary(const ModelPlan& plan) {
  const std::string rule(64, '-'), double_rule(64, '=');
  std::string out = rule + "\n" + row("Layer (type)", "Output Shape", "Param #") + double_rule + "\n";
  int64_t activations = 0;
  for (size_t i = 0; i < plan.rows.size(); ++i) {
    const SummaryRow& r = plan.rows[i];
    out += row(r.type_name + "-" + std::to_string(i + 1), shape_str(r.output), format_thousands(r.params));
    activations += numel(r.output);
  }
  // Same size estimates as torchsummary: float32, forward + backward activations.
  constexpr double kMb = 1024.0 * 1024.0;
  const double input_mb = static_cast<double>(numel(plan.input)) * 4.0 / kMb;
  const double activations_mb = 2.0 * static_cast<double>(activations) * 4.0 / kMb;
  const double params_mb = static_cast<double>(plan.total_params) * 4.0 / kMb;
  out += double_rule + "\n";
  out += "Total params: " + format_thousands(plan.total_params) + "\n";
  out += "Trainable params: " + format_thousands(plan.total_params - plan.frozen_params) + "\n";
  out += "Non-trainable params: " + format_thousands(plan.frozen_params) + "\n" + rule + "\n";
  out += megabytes("Input size (MB)", input_mb);
  out += megabytes("Forward/backward pass size (MB)", activations_mb);
  out += megabytes("Params size (MB)", params_mb);
  out += megabytes("Estimated Total Size (MB)", input_mb + activations_mb + params_mb);
  return out + rule + "\n";
}

std::string format_block_uses(const ModelPlan& plan, const std::vector<BlockUseSpec>& uses) {
  if (uses.empty()) return "";
  std::string out = "Blocks (rows of the table above):\n";
  size_t width = 0;
  std::vector<std::string> where, what;
  for (const auto& use : uses) {
    where.push_back(use.path.substr(0, use.path.rfind('.')));
    what.push_back(use.block + (use.args.empty() ? "" : " {" + use.args + "}"));
    width = std::max(width, what.back().size());
  }
  for (size_t u = 0; u < uses.size(); ++u) {
    const std::string inside = uses[u].path + ".layers.";
    size_t first = 0, last = 0;
    int64_t params = 0;
    for (size_t i = 0; i < plan.rows.size(); ++i) {
      if (plan.rows[i].layer_path.rfind(inside, 0) != 0) continue;
      if (first == 0) first = i + 1;
      last = i + 1, params += plan.rows[i].params;
    }
    out += "  " + what[u] + std::string(width + 2 - what[u].size(), ' ') + "rows " + std::to_string(first) + "-" +
           std::to_string(last) + ", " + format_thousands(params) + " params, at " + where[u] + "\n";
  }
  return out;
}

}  // namespace runner
