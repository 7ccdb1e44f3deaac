// `runner compare`: one row per group of finished runs, mean ± std over seeds.
// Plain records in, text out; no SQL, no LibTorch.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runner/store/store.h"

namespace runner {

struct CompareOptions {
  std::string by = "model.norm";   ///< dotted config key(s) to group by, comma-separated
  std::vector<std::string> where;  ///< KEY=VALUE filters on the config
  std::string sweep;               ///< only runs of this sweep (or of these, comma-separated), when set
  std::string format = "table";    ///< table | markdown | csv | json
  std::string rank;                ///< "" (by key), val or test: best mean final accuracy first
  bool by_given = false;           ///< --by on the command line: a search's runs compared as runs, not as rungs
};

/// The runs matching --where KEY=VALUE filters (on the config) and --sweep;
/// throws ConfigError for a malformed filter.
std::vector<RunRow> select_runs(const std::vector<RunRow>& runs, const std::vector<std::string>& where,
                                const std::string& sweep);

/// How the runs of a comparison differ beyond the --by keys, the seed, and what
/// config_hash leaves out (name, description, data.root, train.threads, .device,
/// .layout), not counting what the --by keys imply in the resolved config (a
/// layer's norm type follows model.norm): each distinct combination of the differing keys' values
/// is one experiment, and a row of the comparison never mixes two.
struct Variation {
  struct Experiment {
    std::vector<std::string> values;  ///< one per key of `keys`; "(unset)" where a config lacks it
    std::vector<int64_t> run_ids;
    std::string label;  ///< its sweep, where no other experiment has that sweep; else "run ID" of its first run
  };
  std::vector<std::string> keys;  ///< dotted config leaves (list items by index) whose values differ
  std::vector<Experiment> experiments;
  std::vector<size_t> run_experiment;  ///< per run: its index in `experiments`
};

/// Up to this many differing keys become columns; more, one "experiment" column.
constexpr size_t kMaxKeyColumns = 3;

/// The config keys that may differ within one experiment: `by`, train.seed and config_hash's exceptions.
std::vector<std::string> same_experiment_exceptions(const std::vector<std::string>& by);

Variation find_variation(const std::vector<RunRow>& runs, const std::vector<std::string>& by);

/// The comparison before rendering: its header and rows (cells as text), the note
/// under it (why an "experiment" column), and the JSON entries.
struct CompareTable {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::string note;
  nlohmann::json json;
};
CompareTable compare_table(const std::vector<RunRow>& runs, const CompareOptions& options);

/// Throws ConfigError for a malformed --where; returns the rendered comparison:
/// one row per (--by values, experiment), with the differing keys as columns.
std::string compare_runs(const std::vector<RunRow>& runs, const CompareOptions& options);

/// Rows under a header as an aligned text table (first column left, the rest right),
/// markdown or csv; a cell's "±" counts as one column.
std::string render_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
                         const std::string& format);

/// Mean and sample standard deviation (0 for a single value).
std::pair<double, double> mean_std(const std::vector<double>& values);

/// Two-sided p-value of Welch's t-test that `a` and `b` have the same mean (unequal
/// variances); NaN when either has fewer than 2 values or both have no spread.
double welch_p_value(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace runner
