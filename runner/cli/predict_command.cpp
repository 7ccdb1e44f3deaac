#include "runner/cli/predict_command.h"

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "runner/base/errors.h"
#include "runner/cli/command.h"
#include "runner/cli/commands.h"
#include "runner/export/export.h"
#include "runner/train/data.h"
#include "runner/train/device.h"

namespace runner {

int cmd_predict(const PredictArgs& args) {
  LoadedRun run = load_run(args.db, args.run_id, args.allow_unfinished);
  const auto& input = run.spec.model.input;
  // Every image is read before any is classified: a bad one is refused before output starts.
  std::vector<torch::Tensor> images;
  for (const auto& path : args.images) images.push_back(fit_image(read_image(path), input[1], input[2]));
  guard_onednn(run.spec.model, static_cast<int64_t>(images.size()), false, false);  // Debian 13: docs/platforms.md
  torch::NoGradGuard no_grad;
  const BatchTransform transform(run.spec.data, torch::kCPU);
  const torch::Tensor probs = torch::softmax(run.model.net->forward(transform.eval(torch::stack(images))), 1);
  const int64_t k = std::min<int64_t>(3, probs.size(1));
  const auto top = probs.topk(k, 1);
  const torch::Tensor values = std::get<0>(top), indices = std::get<1>(top);
  nlohmann::json out = nlohmann::json::array();
  for (size_t i = 0; i < args.images.size(); ++i) {
    nlohmann::json entry{{"image", args.images[i]}, {"top", nlohmann::json::array()}};
    std::string line = args.images[i] + ":";
    for (int64_t j = 0; j < k; ++j) {
      const auto cls = static_cast<size_t>(indices[static_cast<int64_t>(i)][j].item<int64_t>());
      const double p = values[static_cast<int64_t>(i)][j].item<double>();
      const std::string& name = run.info.class_names.at(cls);
      entry["top"].push_back({{"class", name}, {"index", cls}, {"probability", p}});
      char buf[64];
      std::snprintf(buf, sizeof buf, " %.1f %%", 100.0 * p);
      line += (j ? ", " : " ") + name + buf;
    }
    out.push_back(entry);
    if (!args.json) std::cout << line << "\n";
  }
  if (args.json) std::cout << out.dump(2) << "\n";
  return kExitOk;
}

Command predict_command(CLI::App& app) {
  auto args = std::make_shared<PredictArgs>();
  args->db = kDefaultDb;
  CLI::App* cmd = add_subcommand(app, "predict", "Classify PNG or JPEG images with a run's trained network (top 3)");
  cmd->add_option("run_id", args->run_id, "run id (see runner runs)")->required();
  cmd->add_option("images", args->images, "PNG or JPEG files of any size (scaled as docs/export.md says)")->required();
  cmd->add_flag("--json", args->json, "one JSON array: image, top classes with probabilities");
  cmd->add_flag("--allow-unfinished", args->allow_unfinished, "use a run that did not finish");
  add_db_option(cmd, args->db);
  return {cmd, [args] { return cmd_predict(*args); }};
}

}  // namespace runner
