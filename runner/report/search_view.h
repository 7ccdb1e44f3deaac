// A search as the database knows it: its rungs, each point's searched values,
// metric and whether it was promoted. `runner compare --sweep NAME` prints it,
// `runner report --sweep NAME` draws it (the metric against each searched key).
// Reads only the store: the searches table, the sweep's points and their runs.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "runner/base/run_status.h"
#include "runner/store/store.h"

namespace runner {

struct SearchView {
  SearchRow search;
  std::vector<int64_t> rung_epochs;  ///< empty without halving
  std::vector<std::string> keys;     ///< the searched keys, in file order
  std::vector<std::string> kinds;    ///< per key: uniform | log_uniform | int | choice
  std::string metric;                ///< what ranks the points: halving's metric, else val_acc where recorded
  bool chosen_on_test = false;       ///< the ranking metric is test_acc

  struct Point {
    int64_t sample = 0;
    int64_t rung = 0;
    std::vector<std::string> values;  ///< per key, as the point's key says ("" where it does not)
    RunStatus status = RunStatus::Pending;
    int64_t run_id = 0, params = 0, epochs = 0;
    std::optional<double> val_acc, test_acc;
    bool promoted = false;  ///< trained again in the next rung
    bool winner = false;    ///< the search's best point (of its last rung, once that is complete)
    std::optional<double> metric() const;
    std::string name;
  };
  std::vector<Point> points;  ///< rung by rung, samples in order
  size_t rungs() const { return rung_epochs.empty() ? 1 : rung_epochs.size(); }
};

/// The sweep's search, or nothing when `sweep` is not a recorded search.
std::optional<SearchView> load_search_view(const Store& store, const std::string& sweep);

/// Per rung: its points, their values, status, metrics and promotion; table | markdown | csv | json.
std::string search_text(const SearchView& view, const std::string& format);

/// The rung tables and one scatter per searched key (the metric against its values,
/// a colour per rung, promoted points filled, the winner ringed), as HTML.
std::string search_html(const SearchView& view);

/// Round tick values covering [lo, hi] (about `target` of them: 1, 2 or 5 times a power of ten).
std::vector<double> nice_ticks(double lo, double hi, int target);

/// [lo, hi] widened to round values (about `target` steps of 1, 2 or 5 times a power of
/// ten), with a tick at each step: an axis whose every label is a round number.
struct RoundAxis {
  double lo = 0, hi = 1;
  std::vector<double> ticks;
};
RoundAxis round_axis(double lo, double hi, int target);

}  // namespace runner
