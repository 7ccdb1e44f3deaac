// Training a sweep's points on this machine: each point a child `runner run`
// process (--jobs at a time) that records itself in the shared database; claims
// keep two sweeps from training one point; Ctrl-C or SIGTERM reaches each child
// once, and each checkpoints and records itself as interrupted.
#pragma once
#include <cstdint>
#include <vector>

#include "runner/config/grid.h"
#include "runner/config/spec.h"
#include "runner/store/store.h"
#include "runner/sweep/points.h"
#include "runner/sweep/sweep.h"

namespace runner {

/// Trains `mine` (this shard's points that passed, with `total` points in all shards): a grid's
/// points, or a halving search rung by rung (in shards: only the current rung's share). Returns
/// cmd_sweep's exit code.
int train_points(Store& store, const SweepArgs& args, const GridSpec& grid, const std::vector<CheckedPoint>& mine,
                 size_t total, const std::vector<GridPoint>& drawn, const ExperimentSpec& base, int64_t shard,
                 int64_t shards);

}  // namespace runner
