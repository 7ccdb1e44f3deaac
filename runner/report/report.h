// Pictures from the results database: a self-contained HTML report and
// single images (SVG, or PNG rendered from the same SVG with librsvg).
// Reads only the store (and the test images of the runs' datasets).
#pragma once
#include <string>
#include <vector>

namespace runner {

class Store;

struct ReportArgs {
  std::vector<int64_t> run_ids;    ///< explicit runs; empty = all matching the filters
  std::string sweep;               ///< only runs of this sweep
  std::vector<std::string> where;  ///< KEY=VALUE config filters
  std::string out = "results/report.html";
  std::string db;
};

struct PlotArgs {
  std::vector<int64_t> run_ids;
  std::string out;              ///< FILE.svg or FILE.png
  std::string what = "curves";  ///< curves | misclassified | confusion
  std::string db;
};

/// Throws StoreError for an unknown run or an empty database, ConfigError for
/// bad arguments, DataError for an output path that cannot be written.
int cmd_report(const ReportArgs& args);
int cmd_plot(const PlotArgs& args);

/// The report's stylesheet, for other pages that show its pieces (runner ui).
const char* report_css();

/// One run as the report shows it: the four curves, its summary, recipe,
/// per-class accuracy, confusion matrix and misclassified images (HTML).
/// StoreError for an unknown run.
std::string run_page_html(const Store& store, int64_t run_id);

/// Renders an SVG document to PNG bytes (librsvg). Throws DataError on failure,
/// ConfigError in a runner built without PNG rendering (-DRUNNER_PNG=OFF).
std::vector<unsigned char> svg_to_png(const std::string& svg);

}  // namespace runner
