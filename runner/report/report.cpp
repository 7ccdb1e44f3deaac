#include "runner/report/report.h"

#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "runner/base/env_info.h"
#include "runner/base/errors.h"
#include "runner/base/text.h"
#include "runner/config/config.h"
#include "runner/config/plan.h"
#include "runner/config/spec_json.h"
#include "runner/config/summary.h"
#include "runner/report/compare.h"
#include "runner/report/html.h"
#include "runner/report/search_view.h"
#include "runner/store/store.h"
#include "runner/train/data.h"

namespace runner {
namespace fs = std::filesystem;

namespace {

constexpr int kMisclassifiedShown = 16;

std::string escape(const std::string& text) { return html_escape(text); }
std::string fmt(double v, int digits = 2) { return fixed_text(v, digits); }

std::string base64(const std::vector<unsigned char>& bytes) {
  static const char* const kTable = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned v = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out += {kTable[v >> 18], kTable[(v >> 12) & 63], kTable[(v >> 6) & 63], kTable[v & 63]};
  }
  if (i + 1 == bytes.size()) {
    const unsigned v = bytes[i] << 16;
    out += {kTable[v >> 18], kTable[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == bytes.size()) {
    const unsigned v = (bytes[i] << 16) | (bytes[i + 1] << 8);
    out += {kTable[v >> 18], kTable[(v >> 12) & 63], kTable[(v >> 6) & 63], '='};
  }
  return out;
}

/// RGB pixels (row-major, 3 bytes each) → PNG bytes with libpng.
std::vector<unsigned char> encode_png(const std::vector<unsigned char>& rgb, int width, int height) {
  std::vector<unsigned char> out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    throw DataError("PNG encoding failed");
  }
  png_set_write_fn(
      png, &out,
      [](png_structp p, png_bytep data, png_size_t length) {
        auto* buffer = static_cast<std::vector<unsigned char>*>(png_get_io_ptr(p));
        buffer->insert(buffer->end(), data, data + length);
      },
      nullptr);
  png_set_IHDR(png, info, static_cast<png_uint_32>(width), static_cast<png_uint_32>(height), 8, PNG_COLOR_TYPE_RGB,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < height; ++y)
    png_write_row(png, const_cast<png_bytep>(rgb.data() + static_cast<size_t>(y) * static_cast<size_t>(width) * 3));
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

const char* norm_colour(const std::string& norm, size_t fallback) {
  static const std::map<std::string, const char*> kColours{
      {"batch", "#1f77b4"}, {"layer", "#ff7f0e"}, {"group", "#2ca02c"}, {"none", "#7f7f7f"}};
  static const char* const kOthers[] = {"#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"};
  const auto it = kColours.find(norm);
  return it != kColours.end() ? it->second : kOthers[fallback % 5];
}

const char* seed_dash(size_t order) {
  static const char* const kDashes[] = {"", "7 4", "2 3", "9 3 2 3", "4 4"};
  return kDashes[order % 5];
}

/// Everything the pictures of one run need.
struct RunView {
  RunRow row;
  std::vector<EpochRow> epochs;
  TestResults results;
  std::string norm;
  int64_t seed = 0;
  std::string colour, dash;
  std::string label;  ///< "run 3 · batch · seed 1"
};

std::vector<RunView> load_views(const Store& store, const std::vector<RunRow>& rows) {
  std::vector<RunView> views;
  std::map<int64_t, size_t> seed_order;
  std::map<std::string, size_t> norm_order;
  for (const auto& row : rows) {
    RunView v;
    v.row = row;
    v.epochs = store.epochs(row.id);
    v.results = store.test_results(row.id);
    const nlohmann::json config = nlohmann::json::parse(row.record.config_json, nullptr, false);
    const nlohmann::json norm = json_at(config, "model.norm");
    v.norm = norm.is_string() ? norm.get<std::string>() : "?";
    v.seed = row.record.seed;
    if (!seed_order.count(v.seed)) seed_order[v.seed] = seed_order.size();
    if (!norm_order.count(v.norm)) norm_order[v.norm] = norm_order.size();
    v.colour = norm_colour(v.norm, norm_order[v.norm]);
    v.dash = seed_dash(seed_order[v.seed]);
    v.label = "run " + std::to_string(row.id) + " · " + v.norm + " · seed " + std::to_string(v.seed);
    views.push_back(std::move(v));
  }
  return views;
}

/// One line chart of a metric over epochs for every run, shared axes.
std::string chart_svg(const std::vector<RunView>& runs, const std::string& title, double EpochRow::*metric,
                      bool standalone, int x0 = 0, int y0 = 0) {
  const int w = 460, h = 280, left = 52, right = 12, top = 30, bottom = 40;
  double lo = 1e300, hi = -1e300;
  int64_t max_epoch = 1;
  for (const auto& r : runs)
    for (const auto& e : r.epochs)
      lo = std::min(lo, e.*metric), hi = std::max(hi, e.*metric), max_epoch = std::max(max_epoch, e.epoch);
  if (lo > hi) lo = 0, hi = 1;
  if (hi - lo < 1e-9) hi = lo + 1;
  // The axis runs between round values and ticks at each (not at 1.749 or 27.3).
  const RoundAxis axis = round_axis(lo, hi, 4);
  lo = axis.lo, hi = axis.hi;
  const std::vector<double>& ticks = axis.ticks;
  auto x_of = [&](double epoch) {
    return left + (w - left - right) * (epoch - 1) / std::max<double>(1, max_epoch - 1);
  };
  auto y_of = [&](double v) { return top + (h - top - bottom) * (1 - (v - lo) / (hi - lo)); };
  std::ostringstream s;
  if (standalone)
    s << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"" << w << "\" height=\"" << h
      << "\" viewBox=\"0 0 " << w << " " << h << "\">";
  s << "<g transform=\"translate(" << x0 << "," << y0 << ")\" font-family=\"sans-serif\" font-size=\"11\">"
    << "<rect width=\"" << w << "\" height=\"" << h << "\" fill=\"#fff\"/>"
    << "<text x=\"" << w / 2 << "\" y=\"18\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">"
    << escape(title) << "</text>";
  for (double v : ticks) {
    char label[32];
    std::snprintf(label, sizeof label, "%g", v);
    s << "<line x1=\"" << left << "\" x2=\"" << w - right << "\" y1=\"" << fmt(y_of(v), 1) << "\" y2=\""
      << fmt(y_of(v), 1) << "\" stroke=\"#e5e5e5\"/><text x=\"" << left - 5 << "\" y=\"" << fmt(y_of(v) + 4, 1)
      << "\" text-anchor=\"end\">" << label << "</text>";
  }
  // Epochs at round steps (5, 10, 15, 20; not 1, 3, 5, …), and epoch 1 where the axis starts.
  std::vector<double> epoch_ticks{1};
  for (double e : nice_ticks(1, static_cast<double>(max_epoch), 5))
    if (e > 1 && std::fabs(e - std::round(e)) < 1e-9) epoch_ticks.push_back(e);
  for (double e : epoch_ticks)
    s << "<text x=\"" << fmt(x_of(e), 1) << "\" y=\"" << h - bottom + 15 << "\" text-anchor=\"middle\">"
      << static_cast<int64_t>(e) << "</text>";
  s << "<text x=\"" << (left + w - right) / 2 << "\" y=\"" << h - 8 << "\" text-anchor=\"middle\">epoch</text>"
    << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << w - left - right << "\" height=\""
    << h - top - bottom << "\" fill=\"none\" stroke=\"#999\"/>";
  for (const auto& r : runs) {
    if (r.epochs.empty()) continue;
    s << "<polyline fill=\"none\" stroke-width=\"2\" stroke=\"" << r.colour << "\" stroke-dasharray=\"" << r.dash
      << "\" points=\"";
    for (const auto& e : r.epochs)
      s << fmt(x_of(static_cast<double>(e.epoch)), 1) << "," << fmt(y_of(e.*metric), 1) << " ";
    s << "\"><title>" << escape(r.label) << "</title></polyline>";
  }
  s << "</g>";
  if (standalone) s << "</svg>";
  return s.str();
}

std::string legend_svg(const std::vector<RunView>& runs, int x0, int y0) {
  std::ostringstream s;
  s << "<g transform=\"translate(" << x0 << "," << y0 << ")\" font-family=\"sans-serif\" font-size=\"12\">";
  for (size_t i = 0; i < runs.size(); ++i) {
    const int x = static_cast<int>(i % 2) * 455, y = static_cast<int>(i / 2) * 18;  // two columns: labels are long
    s << "<line x1=\"" << x << "\" x2=\"" << x + 30 << "\" y1=\"" << y + 6 << "\" y2=\"" << y + 6
      << "\" stroke-width=\"2\" stroke=\"" << runs[i].colour << "\" stroke-dasharray=\"" << runs[i].dash
      << "\"/><text x=\"" << x + 36 << "\" y=\"" << y + 10 << "\">"
      << escape(runs[i].label + " (" + runs[i].row.record.name + ")") << "</text>";
  }
  return s.str() + "</g>";
}

/// The four curves (train/test × loss/accuracy) and a legend in one SVG.
std::string curves_svg(const std::vector<RunView>& runs) {
  const int rows_of_legend = static_cast<int>((runs.size() + 1) / 2);
  const int width = 920, height = 560 + 20 + rows_of_legend * 18;
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"curves\" viewBox=\"0 0 " << width << " " << height
    << "\" width=\"" << width << "\" height=\"" << height << "\"><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>"
    << chart_svg(runs, "train loss", &EpochRow::train_loss, false, 0, 0)
    << chart_svg(runs, "test loss", &EpochRow::test_loss, false, 460, 0)
    << chart_svg(runs, "train accuracy %", &EpochRow::train_acc, false, 0, 280)
    << chart_svg(runs, "test accuracy %", &EpochRow::test_acc, false, 460, 280) << legend_svg(runs, 10, 572)
    << "</svg>";
  return s.str();
}

/// The four curves as separate charts that wrap on a narrow screen, with an HTML legend.
std::string curves_html(const std::vector<RunView>& runs) {
  std::ostringstream s;
  s << "<div class=\"charts\">" << chart_svg(runs, "train loss", &EpochRow::train_loss, true)
    << chart_svg(runs, "test loss", &EpochRow::test_loss, true)
    << chart_svg(runs, "train accuracy %", &EpochRow::train_acc, true)
    << chart_svg(runs, "test accuracy %", &EpochRow::test_acc, true) << "</div><ul class=\"legend\">";
  for (const auto& r : runs)
    s << "<li><svg width=\"32\" height=\"10\"><line x1=\"0\" x2=\"32\" y1=\"5\" y2=\"5\" stroke-width=\"2\" stroke=\""
      << r.colour << "\" stroke-dasharray=\"" << r.dash << "\"/></svg> "
      << escape(r.label + " (" + r.row.record.name + ")") << "</li>";
  return s.str() + "</ul>";
}

/// Confusion matrix as a heat map with counts.
std::string confusion_svg(const RunView& run) {
  const auto& names = run.results.class_names;
  const int n = static_cast<int>(names.size()), cell = 34, left = 90, top = 96;
  const int size_w = left + n * cell + 10, size_h = top + n * cell + 30;
  int64_t peak = 1;
  for (const auto& row : run.results.confusion)
    for (auto c : row) peak = std::max(peak, c);
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"confusion\" viewBox=\"0 0 " << size_w << " " << size_h
    << "\" width=\"" << size_w << "\" height=\"" << size_h
    << "\" font-family=\"sans-serif\" font-size=\"10\"><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>"
    << "<text x=\"4\" y=\"14\" font-size=\"12\" font-weight=\"bold\">" << escape(run.label)
    << ": confusion</text><text x=\"4\" y=\"28\">rows: true class, columns: predicted</text>";
  for (int i = 0; i < n; ++i) {
    s << "<text x=\"" << left - 4 << "\" y=\"" << top + i * cell + cell / 2 + 4 << "\" text-anchor=\"end\">"
      << escape(names[static_cast<size_t>(i)]) << "</text>"
      << "<text transform=\"translate(" << left + i * cell + cell / 2 + 4 << "," << top - 4 << ") rotate(-60)\">"
      << escape(names[static_cast<size_t>(i)]) << "</text>";
    for (int j = 0; j < n; ++j) {
      const int64_t c = run.results.confusion[static_cast<size_t>(i)][static_cast<size_t>(j)];
      const double a = std::sqrt(static_cast<double>(c) / static_cast<double>(peak));
      s << "<rect x=\"" << left + j * cell << "\" y=\"" << top + i * cell << "\" width=\"" << cell << "\" height=\""
        << cell << "\" fill=\"" << (i == j ? "#1f77b4" : "#d62728") << "\" fill-opacity=\"" << fmt(0.08 + 0.92 * a, 3)
        << "\" stroke=\"#fff\"/><text x=\"" << left + j * cell + cell / 2 << "\" y=\"" << top + i * cell + cell / 2 + 4
        << "\" text-anchor=\"middle\" fill=\"" << (a > 0.6 ? "#fff" : "#222") << "\">" << c << "</text>";
    }
  }
  return s.str() + "</svg>";
}

/// The first misclassified test images as base64 PNGs with captions.
struct Tile {
  std::string png_base64, truth, predicted;
  int64_t index = 0;
};

std::vector<Tile> misclassified_tiles(const RunView& run, const ImageSet* test, std::string& note) {
  std::vector<Tile> tiles;
  if (test == nullptr) return tiles;
  const auto& names = run.results.class_names;
  for (size_t i = 0; i < run.results.misclassified.size() && tiles.size() < kMisclassifiedShown; ++i) {
    const auto [index, predicted] = run.results.misclassified[i];
    if (index >= test->size()) {
      note = "the test set found now is smaller than the run's; images not shown";
      return {};
    }
    const torch::Tensor img = test->images[index];                                              // [3, H, W] uint8
    const int h = static_cast<int>(img.size(1)), w = static_cast<int>(img.size(2)), scale = 1;  // the SVG scales it up
    const auto a = img.accessor<uint8_t, 3>();
    std::vector<unsigned char> rgb(static_cast<size_t>(h * scale * w * scale * 3));
    for (int y = 0; y < h * scale; ++y)
      for (int x = 0; x < w * scale; ++x)
        for (int c = 0; c < 3; ++c) rgb[static_cast<size_t>((y * w * scale + x) * 3 + c)] = a[c][y / scale][x / scale];
    Tile t;
    t.png_base64 = base64(encode_png(rgb, w * scale, h * scale));
    const auto name = [&](int64_t k) {
      return k >= 0 && static_cast<size_t>(k) < names.size() ? names[static_cast<size_t>(k)] : std::to_string(k);
    };
    t.truth = name(run.results.true_labels[i]);
    t.predicted = name(predicted);
    t.index = index;
    tiles.push_back(std::move(t));
  }
  return tiles;
}

std::string misclassified_svg(const RunView& run, const std::vector<Tile>& tiles) {
  const int per_row = 8, cell_w = 100, cell_h = 100;
  const int rows = static_cast<int>((tiles.size() + per_row - 1) / per_row);
  const int width = per_row * cell_w, height = 24 + std::max(rows, 1) * cell_h;
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"misclassified\" viewBox=\"0 0 " << width << " " << height
    << "\" width=\"" << width << "\" height=\"" << height
    << "\" font-family=\"sans-serif\" font-size=\"11\"><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/><text "
       "x=\"4\" y=\"15\" "
       "font-size=\"12\" font-weight=\"bold\">"
    << escape(run.label) << ": misclassified test images (true → predicted)</text>";
  for (size_t i = 0; i < tiles.size(); ++i) {
    const int x = static_cast<int>(i % per_row) * cell_w + 18, y = 24 + static_cast<int>(i / per_row) * cell_h;
    s << "<image x=\"" << x << "\" y=\"" << y << "\" width=\"64\" height=\"64\" style=\"image-rendering:pixelated\" "
      << "href=\"data:image/png;base64," << tiles[i].png_base64 << "\"/><text x=\"" << x + 32 << "\" y=\"" << y + 78
      << "\" text-anchor=\"middle\">" << escape(tiles[i].truth) << "</text><text x=\"" << x + 32 << "\" y=\"" << y + 91
      << "\" text-anchor=\"middle\" fill=\"#d62728\">→ " << escape(tiles[i].predicted) << "</text>";
  }
  return s.str() + "</svg>";
}

/// Test images of a run's dataset, when they can still be found.
const ImageSet* test_images(const RunView& run, std::map<std::string, ImageSet>& cache, std::string& note) {
  ExperimentSpec spec;
  try {
    spec = parse_experiment(run.row.record.config_yaml, run.row.record.experiment_file);
  } catch (const std::exception& e) {
    note = std::string("config cannot be read back: ") + e.what();
    return nullptr;
  }
  // The root as the run saw it (recorded expanded); else as the config says now.
  const nlohmann::json recorded =
      json_at(nlohmann::json::parse(run.row.record.config_json, nullptr, false), "data.root");
  if (recorded.is_string() && fs::exists(recorded.get<std::string>())) spec.data.root = recorded.get<std::string>();
  const std::string key = spec.data.dataset + ":" + spec.data.root + ":" + std::to_string(spec.data.limit_test);
  auto it = cache.find(key);
  if (it == cache.end()) {
    DataSpec data = spec.data;
    data.limit_train = 1;  // only the test split is shown
    try {
      it = cache.emplace(key, load_dataset(data).test).first;
    } catch (const DataError& e) {
      note = std::string("test images not available: ") + e.what();
      return nullptr;
    }
  }
  return &it->second;
}

std::vector<RunRow> pick_runs(const Store& store, const std::vector<int64_t>& ids,
                              const std::vector<std::string>& where, const std::string& sweep) {
  std::vector<RunRow> rows;
  if (!ids.empty()) {
    for (int64_t id : ids) rows.push_back(store.run(id));  // throws for an unknown id
    return rows;
  }
  rows = select_runs(store.runs(), where, sweep);
  if (rows.empty())
    throw StoreError(store.path() + ": no runs" + (where.empty() && sweep.empty() ? "" : " match the filters") +
                     " (run an experiment first; see runner runs)");
  return rows;
}

void write_file(const std::string& path, const std::string& bytes) {
  const fs::path parent = fs::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty()) fs::create_directories(parent, ec);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw DataError(path + ": cannot write here" + (ec ? " (" + ec.message() + ")" : ""));
  }
  fs::rename(tmp, path, ec);
  if (ec) throw DataError(path + ": cannot write here (" + ec.message() + ")");
}

const char* const kStyle = R"CSS(
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;padding:12px;max-width:1240px;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:2em}
table{border-collapse:collapse;font-size:.9em;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 7px;text-align:right}
td{white-space:nowrap}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}.scroll{overflow-x:auto}
svg{max-width:100%;height:auto}pre{background:#f7f7f7;padding:8px;overflow-x:auto;font-size:.8em}
.status{display:inline-block;padding:1px 8px;border-radius:9px;color:#fff;font-size:.85em}
.finished{background:#2ca02c}.running{background:#ff7f0e}.failed,.diverged{background:#d62728}.interrupted{background:#7f7f7f}
.cols{display:flex;flex-wrap:wrap;gap:16px}.cols>div{flex:1 1 380px;min-width:0}
details{margin:6px 0}.charts{display:flex;flex-wrap:wrap;gap:8px}.charts svg{flex:1 1 440px;max-width:100%}
.charts svg.scatter{flex:0 1 320px}
.legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:4px 18px;font-size:.85em}
)CSS";

std::string comparison_html(const std::vector<RunRow>& rows) {
  CompareOptions options;
  options.format = "json";
  const nlohmann::json groups = nlohmann::json::parse(compare_runs(rows, options));
  // Rows never mix experiments: the keys they differ in besides the norm are columns.
  std::vector<std::string> differs;
  if (!groups.empty())
    for (const auto& [k, v] : groups[0]["differs"].items()) differs.push_back(k);
  std::ostringstream s;
  s << "<div class=\"scroll\"><table id=\"comparison\"><tr><th>model.norm</th>";
  for (const auto& k : differs) s << "<th>" << escape(k) << "</th>";
  s << "<th>runs</th><th>params</th><th>epochs</th><th>final test %</th><th>best test %</th><th>final train %</th>"
       "<th>train–test gap</th><th>s/epoch</th><th>target met</th></tr>";
  for (const auto& g : groups) {
    const auto pm = [&](const char* mean, const char* sd) {
      return fmt(g[mean].get<double>()) + (g["runs"].get<int>() > 1 ? " ± " + fmt(g[sd].get<double>()) : "");
    };
    s << "<tr data-group=\"" << escape(g["model.norm"].get<std::string>()) << "\"><td>"
      << escape(g["model.norm"].get<std::string>()) << "</td>";
    for (const auto& k : differs) s << "<td>" << escape(g["differs"][k].get<std::string>()) << "</td>";
    s << "<td>" << g["runs"] << "</td><td>" << g["params"] << "</td><td>" << g["epochs"] << "</td><td>"
      << pm("final_test_acc_mean", "final_test_acc_std") << "</td><td>" << pm("best_test_acc_mean", "best_test_acc_std")
      << "</td><td>" << fmt(g["final_train_acc_mean"].get<double>()) << "</td><td>"
      << fmt(g["train_test_gap_mean"].get<double>()) << "</td><td>" << fmt(g["seconds_per_epoch"].get<double>(), 1)
      << "</td><td>" << g["target_met"] << "/" << g["runs"] << "</td></tr>";
  }
  if (groups.empty()) s << "<tr><td colspan=\"10\">no finished runs yet</td></tr>";
  s << "</table></div>";
  if (std::find(differs.begin(), differs.end(), "experiment") != differs.end())
    s << "<p class=\"note\">experiment: these runs differ in many config keys besides the norm and the seed; each row "
         "holds the runs of one config, named by its sweep or its first run.</p>";
  return s.str();
}

std::string run_html(const RunView& run, const std::string& db, std::map<std::string, ImageSet>& cache) {
  const RunRow& r = run.row;
  std::ostringstream s;
  s << "<section class=\"run\" id=\"run-" << r.id << "\" data-run=\"" << r.id << "\"><h2>Run " << r.id << " · "
    << escape(r.record.name) << " <span class=\"status " << status_text(r.status) << "\">" << status_text(r.status)
    << "</span></h2>";
  s << "<p>" << escape(run.norm) << " norm, seed " << r.record.seed << ", " << format_thousands(r.record.params)
    << " parameters, " << r.epochs_done << "/" << r.record.epochs << " epochs on " << escape(r.record.device)
    << "; final test "
    << "<b class=\"final-test-acc\">" << (r.final_test_acc ? fmt(*r.final_test_acc) + " %" : "—") << "</b>, best "
    << (r.best_test_acc ? fmt(*r.best_test_acc) + " %" : "—") << (r.error.empty() ? "" : "; " + escape(r.error))
    << "</p>";
  std::string summary;
  try {
    summary = format_summary(plan_model(parse_experiment(r.record.config_yaml, r.record.experiment_file).model));
  } catch (const std::exception& e) {
    summary = std::string("(cannot rebuild the summary: ") + e.what() + ")";
  }
  s << "<details><summary>model summary</summary><pre>" << escape(summary) << "</pre></details>"
    << "<details><summary>recipe (config as run)</summary><pre>" << escape(r.record.config_yaml) << "</pre></details>";
  if (r.status == RunStatus::Finished) {
    // The trained network out of the tool (docs/export.md); --verify proves the copy equal.
    const std::string id = std::to_string(r.id), db_arg = " --db " + shell_quote(db);
    s << "<div class=\"export\"><b>Use the trained model</b> outside the runner (docs/export.md):"
      << "<pre class=\"export-commands\">runner export " << id << " --format onnx --out run-" << id << ".onnx"
      << escape(db_arg) << " --verify\nrunner export " << id << " --format pytorch --out run-" << id << "-pytorch"
      << escape(db_arg) << " --verify</pre></div>";
  }
  if (r.status != RunStatus::Finished || run.results.class_names.empty()) {
    s << "<p>Per-class results and misclassified images appear when the run has finished.</p></section>";
    return s.str();
  }
  s << "<div class=\"cols\"><div><table "
       "class=\"per-class\"><tr><th>class</th><th>correct</th><th>total</th><th>accuracy %</th></tr>";
  for (size_t k = 0; k < run.results.class_names.size(); ++k)
    s << "<tr><td>" << escape(run.results.class_names[k]) << "</td><td>" << run.results.class_correct[k] << "</td><td>"
      << run.results.class_total[k] << "</td><td>"
      << fmt(run.results.class_total[k] ? 100.0 * static_cast<double>(run.results.class_correct[k]) /
                                              static_cast<double>(run.results.class_total[k])
                                        : 0.0)
      << "</td></tr>";
  s << "</table></div><div>" << confusion_svg(run) << "</div></div>";
  std::string note;
  const ImageSet* test = test_images(run, cache, note);
  const std::vector<Tile> tiles = misclassified_tiles(run, test, note);
  if (!tiles.empty())
    s << misclassified_svg(run, tiles);
  else
    s << "<p>" << escape(note.empty() ? "no misclassified images" : note) << "</p>";
  return s.str() + "</section>";
}

}  // namespace

const char* report_css() { return kStyle; }

std::string run_page_html(const Store& store, int64_t run_id) {
  const std::vector<RunView> runs = load_views(store, {store.run(run_id)});
  std::map<std::string, ImageSet> cache;
  return curves_html(runs) + run_html(runs.front(), store.path(), cache);
}

int cmd_report(const ReportArgs& args) {
  const auto opened = Store::open_to_look(args.db);
  const Store& store = *opened;
  const std::vector<RunRow> rows = pick_runs(store, args.run_ids, args.where, args.sweep);
  const std::vector<RunView> runs = load_views(store, rows);
  std::map<std::string, ImageSet> cache;
  std::ostringstream html;
  html << "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
          "content=\"width=device-width, initial-scale=1\"><title>runner report</title><style>"
       << kStyle << "</style></head><body><h1>runner report</h1><p>" << runs.size() << " run"
       << (runs.size() == 1 ? "" : "s") << " from <code>" << escape(args.db) << "</code>"
       << (args.sweep.empty() ? "" : ", sweep " + escape(args.sweep)) << ", written " << utc_now()
       << ". Colour: norm; line style: seed.</p>"
       << "<h2>Comparison</h2>" << comparison_html(rows);
  // A search: its rungs and the metric against each searched key, before the runs' own curves.
  if (!args.sweep.empty() && args.sweep.find(',') == std::string::npos)
    if (const auto view = load_search_view(store, args.sweep)) html << search_html(*view);
  html << "<h2>Curves</h2>" << curves_html(runs);
  for (const auto& run : runs) html << run_html(run, args.db, cache);
  html << "</body></html>\n";
  write_file(args.out, html.str());
  std::cout << "wrote " << args.out << " (" << runs.size() << " runs, " << html.str().size() / 1024 << " KiB)\n";
  return kExitOk;
}

int cmd_plot(const PlotArgs& args) {
  const std::string ext = fs::path(args.out).extension().string();
  if (ext != ".png" && ext != ".svg") throw ConfigError("--out " + args.out + ": must end in .png or .svg");
  const auto opened = Store::open_to_look(args.db);
  const Store& store = *opened;
  const std::vector<RunView> runs = load_views(store, pick_runs(store, args.run_ids, {}, ""));
  std::string svg;
  if (args.what == "curves") {
    svg = curves_svg(runs);
  } else {
    const RunView& run = runs.front();  // one picture per run; the first given
    if (run.row.status != RunStatus::Finished)
      throw ConfigError("run " + std::to_string(run.row.id) + " is " + status_text(run.row.status) + ": it has no " +
                        args.what + " yet");
    if (args.what == "confusion") {
      svg = confusion_svg(run);
    } else {
      std::map<std::string, ImageSet> cache;
      std::string note;
      const std::vector<Tile> tiles = misclassified_tiles(run, test_images(run, cache, note), note);
      if (tiles.empty()) throw DataError("no misclassified images to draw: " + (note.empty() ? "none recorded" : note));
      svg = misclassified_svg(run, tiles);
    }
  }
  if (ext == ".svg") {
    write_file(args.out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + svg + "\n");
  } else {
    const std::vector<unsigned char> png = svg_to_png(svg);
    write_file(args.out, std::string(png.begin(), png.end()));
  }
  std::cout << "wrote " << args.out << "\n";
  return kExitOk;
}

}  // namespace runner
