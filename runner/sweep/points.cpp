#include "runner/sweep/points.h"

#include <cctype>
#include <filesystem>
#include <map>

#include "runner/config/config.h"
#include "runner/config/plan.h"
#include "runner/config/spec_json.h"
#include "runner/config/summary.h"

namespace runner {
namespace fs = std::filesystem;

std::vector<CheckedPoint> check_points(const GridSpec& grid, const std::vector<GridPoint>& points) {
  std::vector<CheckedPoint> checked;
  for (const auto& point : points) {
    CheckedPoint c{point, {}, "", 0, "", {}};
    try {
      const ExperimentSpec spec = load_experiment(grid.base, point.sets);
      const ModelPlan plan = plan_model(spec.model);
      c.params = plan.total_params;
      c.config = experiment_json(spec);
      c.hash = config_hash(c.config);
      check_param_budget(plan, spec.budget);
    } catch (const ConfigError& e) {
      c.problem = e.what();
      c.config_problems = e.diagnostics();
      if (c.config_problems.empty()) c.config_problems.push_back({SourceLoc{grid.file, 0, 0}, "", e.what()});
    } catch (const BudgetError& e) {
      c.problem = e.what();
    }
    checked.push_back(std::move(c));
  }
  return checked;
}

std::vector<CheckedPoint> passing(std::vector<CheckedPoint> points) {
  std::vector<CheckedPoint> out;
  for (auto& c : points)
    if (c.problem.empty()) out.push_back(std::move(c));
  return out;
}

std::string point_log_name(const std::string& name, const std::string& hash) {
  std::string safe;
  for (char c : name) safe += std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' ? c : '_';
  return safe.substr(0, 120) + "-" + hash.substr(0, 8) + ".log";
}

SearchRow search_row(const GridSpec& grid) {
  nlohmann::json space = nlohmann::json::array();
  for (const auto& [key, d] : grid.search.space) {
    using K = Distribution::Kind;
    const char* kind = d.kind == K::Uniform      ? "uniform"
                       : d.kind == K::LogUniform ? "log_uniform"
                       : d.kind == K::Int        ? "int"
                                                 : "choice";
    space.push_back({{"key", key}, {"kind", kind}});
  }
  SearchRow row{grid.sweep, grid.search.method, "", 0, "", space.dump(), fs::absolute(grid.file).string()};
  if (grid.halving.enabled) {
    row.metric = grid.halving.metric;
    row.eta = grid.halving.eta;
    row.rung_epochs_json = nlohmann::json(grid.halving.rung_epochs()).dump();
  }
  return row;
}

void json_diff(const nlohmann::json& a, const nlohmann::json& b, const std::string& path,
               std::vector<std::string>& out) {
  if (a.is_object() && b.is_object()) {
    std::map<std::string, bool> keys;
    for (const auto& item : a.items()) keys[item.key()] = true;
    for (const auto& item : b.items()) keys[item.key()] = true;
    for (const auto& [key, unused] : keys)
      json_diff(a.contains(key) ? a[key] : nlohmann::json(), b.contains(key) ? b[key] : nlohmann::json(),
                path.empty() ? key : path + "." + key, out);
  } else if (a.is_array() && b.is_array() && a.size() == b.size()) {
    for (size_t i = 0; i < a.size(); ++i) json_diff(a[i], b[i], path + "." + std::to_string(i), out);
  } else if (a != b) {
    out.push_back(path + ": " + a.dump() + " → " + b.dump());
  }
}

std::pair<int64_t, int64_t> parse_shard(const std::string& shard) {
  if (shard.empty()) return {0, 1};
  const size_t slash = shard.find('/');
  try {
    if (slash != std::string::npos) {
      const int64_t i = std::stoll(shard.substr(0, slash)), n = std::stoll(shard.substr(slash + 1));
      if (n > 0 && i >= 0 && i < n) return {i, n};
    }
  } catch (const std::exception&) {
  }
  throw ConfigError("--shard " + shard + ": expected I/N with 0 <= I < N, e.g. --shard 0/4 (SLURM: " +
                    "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT with --array=0-3)");
}

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

}  // namespace runner
