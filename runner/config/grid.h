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
//   search:                            # optional: sample points instead of (or besides) the grid
//     method: sobol                    # grid (the default) | random | sobol
//     samples: 48
//     seed: 7                          # the same file draws the same points anywhere
//     space:
//       train.optimizer.lr: {log_uniform: [0.02, 0.4]}
//       train.label_smoothing: {uniform: [0.0, 0.3]}
//       model.layers.0.conv.out: {int: [12, 24], step: 4}
//       model.norm: [batch, group]     # a list is categorical
//   halving: {metric: val_acc, min_epochs: 2, eta: 3, max_epochs: 18}   # successive halving
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "runner/base/errors.h"
#include "runner/config/point_key.h"
#include "runner/config/spec.h"

namespace runner {

struct GridPoint {
  int64_t index = 0;              ///< 0-based, in expansion order (last axis fastest, seeds last)
  PointKey key;                   ///< identifies the point across reruns: "model.norm=batch seed=1"
  std::vector<std::string> sets;  ///< overrides to apply to the base, name and train.seed included
  std::string name;               ///< the run name
};

/// One searched key's distribution.
struct Distribution {
  enum class Kind { Uniform, LogUniform, Int, Choice } kind = Kind::Uniform;
  double low = 0, high = 1;          ///< Uniform, LogUniform: [low, high); Int: [low, high] inclusive
  int64_t step = 1;                  ///< Int only
  std::vector<std::string> choices;  ///< Choice: values as YAML text
  /// The value at u in [0, 1), as the YAML text given to --set.
  std::string value_at(double u) const;
};

struct SearchSpec {
  std::string method = "grid";  ///< grid | random | sobol
  int64_t samples = 0;
  int64_t seed = 0;
  std::vector<std::pair<std::string, Distribution>> space;  ///< in file order: one dimension each
  std::vector<SourceLoc> space_locs;                        ///< where each key was written
};

/// Successive halving: rung r trains its points for min(min_epochs·eta^r, max_epochs)
/// epochs, the whole recipe compressed to that length, and promotes the best
/// 1/eta by `metric` to rung r + 1.
struct HalvingSpec {
  bool enabled = false;
  std::string metric = "val_acc";  ///< val_acc (needs data.validation) | test_acc (chosen on test: labelled so)
  int64_t min_epochs = 0, eta = 3, max_epochs = 0;
  SourceLoc loc, metric_loc, max_epochs_loc;
  /// Epochs of each rung, rung 0 first.
  std::vector<int64_t> rung_epochs() const;
};

struct GridSpec {
  std::string file;
  std::string sweep;                                                   ///< the sweep's name
  std::string base;                                                    ///< path of the base experiment
  std::vector<std::pair<std::string, std::vector<std::string>>> axes;  ///< key → values as YAML text
  std::vector<SourceLoc> axis_locs;                                    ///< where each axis key was written
  std::vector<std::vector<SourceLoc>> axis_value_locs;                 ///< and each of its values
  std::vector<int64_t> seeds;                                          ///< empty: the base's seed
  std::string name_template;
  SearchSpec search;
  HalvingSpec halving;
  bool sampled() const { return search.method != "grid"; }
};

/// Throws ConfigError with file:line:col for every problem of the grid file.
GridSpec load_grid(const std::string& path);

/// Refuses (ConfigError at the grid file's line) a search.space key the base experiment
/// `base` does not have (a grid key is checked with its points: locate_in_grid), and a
/// halving the points cannot record or afford. `drawn`: the points.
void check_grid_keys(const GridSpec& grid, const ExperimentSpec& base, const std::vector<GridPoint>& drawn);

/// A problem a grid point's overrides caused, moved from "--set key=value" to the line of
/// that value under grid: (key "grid.<key>"); any other diagnostic is returned as it is.
Diagnostic locate_in_grid(const GridSpec& grid, const Diagnostic& problem);

/// The points, in order. `base_name` names runs when the grid has no name
/// template; `base_seed` is the seed when the grid lists none.
/// With search.method random or sobol, every sample is combined with every grid
/// combination and seed (samples outermost), its drawn values first in the key.
std::vector<GridPoint> expand_grid(const GridSpec& grid, const std::string& base_name, int64_t base_seed);

/// The search's draws in [0, 1): samples × dimensions, row by row. Sobol: Boost.Random's
/// sequence from point `seed` on; random: mt19937_64(seed), 53 bits per draw.
std::vector<std::vector<double>> search_draws(const SearchSpec& search);

}  // namespace runner
