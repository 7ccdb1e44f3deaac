#include "runner/sweep/halving.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>

#include "runner/base/text.h"

namespace runner {

size_t promoted_count(size_t n, int64_t eta) { return std::max<size_t>(1, n / static_cast<size_t>(eta)); }

std::vector<size_t> rung_sizes(size_t n, int64_t eta, size_t rungs) {
  std::vector<size_t> sizes;
  for (size_t r = 0; r < rungs; ++r) {
    sizes.push_back(n);
    n = promoted_count(n, eta);
  }
  return sizes;
}

int64_t rung_of(const std::string& key) {
  const auto parsed = PointKey::parse(key);
  return parsed && parsed->rung ? *parsed->rung : -1;
}

std::vector<GridPoint> at_rung(const std::vector<GridPoint>& points, size_t rung, int64_t epochs,
                               const ExperimentSpec& base) {
  std::vector<GridPoint> out;
  for (GridPoint p : points) {
    p.key = p.key.with_rung(static_cast<int64_t>(rung));
    p.name += "-r" + std::to_string(rung);
    for (auto& set : p.sets)
      if (set.rfind("name=", 0) == 0) set = "name=" + p.name;
    p.sets.push_back("train.epochs=" + std::to_string(epochs));
    if (base.train.schedule.type == "step") {
      const double scaled = static_cast<double>(base.train.schedule.step_size) * static_cast<double>(epochs) /
                            static_cast<double>(std::max<int64_t>(base.train.epochs, 1));
      p.sets.push_back("train.schedule.step_size=" + std::to_string(std::max<int64_t>(1, std::llround(scaled))));
    }
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<size_t> best_points(const std::vector<double>& metric, const std::vector<int64_t>& point_index,
                                size_t keep) {
  std::vector<size_t> order(metric.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const bool na = std::isnan(metric[a]), nb = std::isnan(metric[b]);
    if (na != nb) return nb;
    if (!na && metric[a] != metric[b]) return metric[a] > metric[b];
    return point_index[a] < point_index[b];
  });
  order.resize(std::min(keep, order.size()));
  return order;
}

std::string metric_text(double v) { return std::isnan(v) ? "-" : fixed_text(v); }

namespace {

/// A finished point's metric from its run in the database; NaN when it has none
/// (diverged, or not finished): such a point ranks last.
double point_metric(const Store& store, const GridSpec& grid, const CheckedPoint& p) {
  const auto [run_id, status] = store.latest_run(grid.sweep, p.hash);
  if (status != RunStatus::Finished) return std::nan("");
  const RunRow run = store.run(run_id);
  const std::optional<double> value = grid.halving.metric == "test_acc" ? run.final_test_acc : run.final_val_acc;
  return value ? *value : std::nan("");
}

}  // namespace

RungState rung_state(const Store& store, const GridSpec& grid, std::vector<CheckedPoint> points, size_t keep) {
  RungState st;
  st.points = std::move(points);
  std::map<std::string, RunStatus> recorded;
  for (const auto& row : store.sweep_points(grid.sweep)) recorded[row.point_key] = row.status;
  st.complete = true;
  for (const auto& p : st.points) {
    const auto it = recorded.find(p.point.key.text());
    RunStatus status = it == recorded.end() ? RunStatus::Pending : it->second;
    // The run is the truth when a sweep died between its end and the point's update.
    const auto [run_id, run_status] = store.latest_run(grid.sweep, p.hash);
    if (has_result(run_status)) status = run_status;
    st.status.push_back(status);
    st.metric.push_back(point_metric(store, grid, p));
    st.complete = st.complete && has_result(status);
  }
  if (st.complete) {
    std::vector<int64_t> index;
    for (const auto& p : st.points) index.push_back(p.point.index);
    st.promoted = best_points(st.metric, index, keep);
  }
  return st;
}

std::vector<RungState> rung_states(const Store& store, const GridSpec& grid, const std::vector<GridPoint>& drawn,
                                   const ExperimentSpec& base) {
  const std::vector<int64_t> rungs = grid.halving.rung_epochs();
  std::vector<RungState> states;
  std::vector<GridPoint> current = drawn;
  for (size_t r = 0; r < rungs.size() && !current.empty(); ++r) {
    std::vector<CheckedPoint> checked = passing(check_points(grid, at_rung(current, r, rungs[r], base)));
    const size_t keep = promoted_count(checked.size(), grid.halving.eta);
    states.push_back(rung_state(store, grid, std::move(checked), keep));
    if (!states.back().complete) break;
    std::vector<GridPoint> next;
    std::vector<size_t> promoted = states.back().promoted;
    std::sort(promoted.begin(), promoted.end());  // in point order
    for (size_t i : promoted)  // back to the drawn point (its index is its position): key and name without the rung
      next.push_back(drawn[static_cast<size_t>(states.back().points[i].point.index)]);
    current = std::move(next);
  }
  return states;
}

size_t current_rung(const std::vector<RungState>& states, size_t rungs) {
  if (states.empty()) return 0;
  return states.back().complete && states.size() == rungs ? rungs : states.size() - 1;
}

}  // namespace runner
