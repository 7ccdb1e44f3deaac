// A sweep's points after checking: each drawn or expanded grid point loaded as
// an experiment, planned and budget-checked, with what the database and the
// logs call it. No LibTorch, no launching.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "runner/base/errors.h"
#include "runner/config/grid.h"
#include "runner/store/store.h"

namespace runner {

/// A point after checking: its config, parameters and whether it may run.
struct CheckedPoint {
  GridPoint point;
  nlohmann::json config;
  std::string hash;
  int64_t params = 0;
  std::string problem;                      ///< empty when the point passes config and budget
  std::vector<Diagnostic> config_problems;  ///< when the problem is the config's (not the budget's)
};

/// Loads, plans and budget-checks each point; a point that fails keeps its problem.
std::vector<CheckedPoint> check_points(const GridSpec& grid, const std::vector<GridPoint>& points);

/// The points that passed (no problem), in order.
std::vector<CheckedPoint> passing(std::vector<CheckedPoint> points);

/// A point's log file: its name and config hash, not its index, which shifts when values are added to a
/// grid while an earlier sweep of it still runs (two points would share, and interleave, one log).
std::string point_log_name(const std::string& name, const std::string& hash);

/// What the database records of a sampled search, for compare and the report.
SearchRow search_row(const GridSpec& grid);

/// Keys whose values differ between two configs, as "key: old → new".
void json_diff(const nlohmann::json& a, const nlohmann::json& b, const std::string& path,
               std::vector<std::string>& out);

/// "--shard I/N" as {I, N}; empty: {0, 1}. Throws ConfigError for anything else.
std::pair<int64_t, int64_t> parse_shard(const std::string& shard);

/// The first line of a (multi-line) error message.
std::string first_line(const std::string& text);

}  // namespace runner
