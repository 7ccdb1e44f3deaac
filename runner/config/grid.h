// Stage 1 for sweeps: a grid file → the list of points, each a set of
// `--set` overrides on the base experiment. No LibTorch.
//
//   base: ../session8/bn.yaml          # relative to the grid file
//   grid:                              # cartesian product over dotted keys
//     model.norm: [batch, layer, group]
//     train.optimizer.lr: [0.02, 0.05, 0.1]
//   seeds: [1, 2, 3]                   # optional; multiplies the grid
//   name: "norm-{model.norm}-lr{train.optimizer.lr}-s{seed}"   # optional run names
//   sweep: norms                       # optional; default: the grid file's name
#pragma once
#include <string>
#include <vector>

namespace runner {

struct GridPoint {
  int64_t index = 0;              ///< 0-based, in expansion order (last axis fastest, seeds last)
  std::string key;                ///< identifies the point across reruns: "model.norm=batch seed=1"
  std::vector<std::string> sets;  ///< overrides to apply to the base, name and train.seed included
  std::string name;               ///< the run name
};

struct GridSpec {
  std::string file;
  std::string sweep;  ///< the sweep's name
  std::string base;   ///< path of the base experiment
  std::vector<std::pair<std::string, std::vector<std::string>>> axes;  ///< key → values as YAML text
  std::vector<int64_t> seeds;  ///< empty: the base's seed
  std::string name_template;
};

/// Throws ConfigError with file:line:col for every problem of the grid file.
GridSpec load_grid(const std::string& path);

/// The points, in order. `base_name` names runs when the grid has no name
/// template; `base_seed` is the seed when the grid lists none.
std::vector<GridPoint> expand_grid(const GridSpec& grid, const std::string& base_name, int64_t base_seed);

}  // namespace runner
