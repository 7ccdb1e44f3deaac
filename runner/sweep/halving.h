// Successive halving: which points each rung trains and which go on. The
// arithmetic (rung sizes, promotions, a point as a rung trains it) is pure and
// unit-tested; rung_states derives a search's progress from the database alone,
// so any process, started at any time, arrives at the same rungs.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "runner/config/grid.h"
#include "runner/config/spec.h"
#include "runner/store/store.h"
#include "runner/sweep/points.h"

namespace runner {

/// How many of n points rung r + 1 trains: the best 1/eta, at least one.
size_t promoted_count(size_t n, int64_t eta);

/// How many points each rung trains when rung 0 has n: n, then promoted_count of the one before.
std::vector<size_t> rung_sizes(size_t n, int64_t eta, size_t rungs);

/// The rung a point key belongs to (" rung=R"), or -1 for a key without one.
int64_t rung_of(const std::string& key);

/// The points as rung `rung` trains them: `epochs` epochs with the recipe's
/// schedule compressed to that length (onecycle and cosine follow train.epochs;
/// a step schedule's step_size is scaled), and a key and name of their own.
std::vector<GridPoint> at_rung(const std::vector<GridPoint>& points, size_t rung, int64_t epochs,
                               const ExperimentSpec& base);

/// The positions (into `metric` and `point_index`) of the best `keep` by metric, higher first; ties
/// and NaNs by point index, so every process promotes the same points. NaN (no metric) ranks last.
std::vector<size_t> best_points(const std::vector<double>& metric, const std::vector<int64_t>& point_index,
                                size_t keep);

/// "%.2f", or "-" for NaN (no metric).
std::string metric_text(double v);

/// A rung's points, their metrics and which of them go on; empty metrics while
/// some point of the rung has not ended (finished or diverged).
struct RungState {
  std::vector<CheckedPoint> points;
  std::vector<double> metric;
  std::vector<RunStatus> status;
  bool complete = false;
  std::vector<size_t> promoted;  ///< indices into points
};

/// One rung's state from the database: each point's status and metric, and its best `keep` when complete.
RungState rung_state(const Store& store, const GridSpec& grid, std::vector<CheckedPoint> points, size_t keep);

/// Walks the rungs as far as the database has them: each complete rung's
/// promotions give the next rung's points.
std::vector<RungState> rung_states(const Store& store, const GridSpec& grid, const std::vector<GridPoint>& drawn,
                                   const ExperimentSpec& base);

/// The first rung the states have not completed; `rungs` when the search is done.
size_t current_rung(const std::vector<RungState>& states, size_t rungs);

}  // namespace runner
