// What `runner sweep` prints without training: the plan (--plan), per-point
// status (--status), a halving search's rungs, and the winner (--best).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "runner/config/grid.h"
#include "runner/config/spec.h"
#include "runner/store/store.h"
#include "runner/sweep/points.h"
#include "runner/sweep/sweep.h"

namespace runner {

/// --plan: this shard's points with parameters, budget and recorded status; the rungs of a halving search.
void print_plan(const GridSpec& grid, const std::vector<CheckedPoint>& mine, size_t total, size_t rejected,
                int64_t shard, int64_t shards, const std::map<std::string, PointRow>& known);

/// --status of a grid or a search without halving: every point's status across the databases.
int print_status(const SweepArgs& args, const GridSpec& grid, const std::vector<CheckedPoint>& points);

/// --status of a halving search: each rung's points, metrics and promotions.
int print_rungs(const SweepArgs& args, const GridSpec& grid, const std::vector<GridPoint>& drawn,
                const ExperimentSpec& base);

/// --best: the winner as a complete experiment YAML. A halving search's best point of its
/// last rung, or the best finished point (validation accuracy where recorded, else test).
int print_best(const SweepArgs& args, const GridSpec& grid, const std::vector<GridPoint>& drawn,
               const ExperimentSpec& base);

}  // namespace runner
