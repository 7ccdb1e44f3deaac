// `runner compare`: one row per group of finished runs, mean ± std over seeds.
// Plain records in, text out; no SQL, no LibTorch.
#pragma once
#include <string>
#include <vector>

#include "runner/store.h"

namespace runner {

struct CompareOptions {
  std::string by = "model.norm";   ///< dotted config key(s) to group by, comma-separated
  std::vector<std::string> where;  ///< KEY=VALUE filters on the config
  std::string sweep;               ///< only runs of this sweep (or of these, comma-separated), when set
  std::string format = "table";    ///< table | markdown | csv | json
  std::string rank;                ///< "" (by key), val or test: best mean final accuracy first
};

/// The runs matching --where KEY=VALUE filters (on the config) and --sweep;
/// throws ConfigError for a malformed filter.
std::vector<RunRow> select_runs(const std::vector<RunRow>& runs, const std::vector<std::string>& where,
                                const std::string& sweep);

/// Throws ConfigError for a malformed --where; returns the rendered comparison.
std::string compare_runs(const std::vector<RunRow>& runs, const CompareOptions& options);

/// Mean and sample standard deviation (0 for a single value).
std::pair<double, double> mean_std(const std::vector<double>& values);

/// Two-sided p-value of Welch's t-test that `a` and `b` have the same mean (unequal
/// variances); NaN when either has fewer than 2 values or both have no spread.
double welch_p_value(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace runner
