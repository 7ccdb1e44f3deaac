#include "runner/report/search_view.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "runner/config/point_key.h"
#include "runner/report/compare.h"
#include "runner/report/html.h"

namespace runner {

std::optional<double> SearchView::Point::metric() const { return val_acc ? val_acc : test_acc; }

namespace {

std::string metric_cell(const std::optional<double>& v) { return v ? fixed_text(*v) : "-"; }

double number(const std::string& text) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  return end != text.c_str() ? v : std::nan("");
}

/// "0.01", "2e-05", "40": as few digits as tell the ticks apart.
std::string tick_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

const char* const kRungColours[] = {"#9aa5b1", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#d62728"};

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / std::max(1, target);
  const int exponent = static_cast<int>(std::floor(std::log10(raw)));
  const double power = std::pow(10.0, exponent), m = raw / power;
  const double mult = m < 1.5 ? 1 : m < 3 ? 2 : m < 7 ? 5 : 10;
  // k·mult/10^-e, not k·mult·10^e: 3/10 is 0.3, 3·0.1 is 0.30000000000000004.
  auto value = [&](int64_t k) {
    const double n = static_cast<double>(k) * mult;
    return exponent < 0 ? n / std::pow(10.0, -exponent) : n * power;
  };
  const double step = mult * power;
  std::vector<double> ticks;
  for (int64_t k = static_cast<int64_t>(std::ceil(lo / step - 1e-9)); value(k) <= hi + step * 1e-9; ++k)
    ticks.push_back(value(k));
  return ticks;
}

RoundAxis round_axis(double lo, double hi, int target) {
  const std::vector<double> round = nice_ticks(lo, hi, target);
  const double step = round.size() > 1 ? round[1] - round[0] : 1;
  RoundAxis axis{std::floor(lo / step + 1e-9) * step, std::ceil(hi / step - 1e-9) * step, {}};
  if (axis.hi <= axis.lo) axis.hi = axis.lo + step;
  axis.ticks = nice_ticks(axis.lo, axis.hi, static_cast<int>(std::lround((axis.hi - axis.lo) / step)));
  return axis;
}

std::optional<SearchView> load_search_view(const Store& store, const std::string& sweep) {
  const std::optional<SearchRow> row = store.search(sweep);
  if (!row) return std::nullopt;
  SearchView view;
  view.search = *row;
  const nlohmann::json rungs = nlohmann::json::parse(row->rung_epochs_json, nullptr, false);
  if (rungs.is_array())
    for (const auto& epochs : rungs)
      if (epochs.is_number_integer()) view.rung_epochs.push_back(epochs.get<int64_t>());
  const nlohmann::json space = nlohmann::json::parse(row->space_json, nullptr, false);
  auto text = [](const nlohmann::json& item, const char* field, const char* otherwise) {
    const auto it = item.find(field);
    return it != item.end() && it->is_string() ? it->get_ref<const std::string&>() : std::string(otherwise);
  };
  if (space.is_array())
    for (const auto& item : space) {
      if (!item.is_object()) continue;
      view.keys.push_back(text(item, "key", ""));
      view.kinds.push_back(text(item, "kind", "uniform"));
    }
  std::map<int64_t, RunRow> runs;
  for (auto& run : store.runs())
    if (run.record.sweep == sweep) runs[run.id] = run;
  std::set<std::string> keys;
  const std::vector<PointRow> rows = store.sweep_points(sweep);
  for (const auto& p : rows) keys.insert(p.point_key);
  bool any_val = false;
  for (const auto& p : rows) {
    SearchView::Point point;
    const PointKey key = PointKey::parse(p.point_key).value_or(PointKey{});  // a key from elsewhere: no values
    point.sample = key.sample.value_or(0);
    point.rung = key.rung.value_or(0);
    for (const auto& k : view.keys) point.values.push_back(key.value(k));
    point.status = p.status;
    point.run_id = p.run_id;
    const auto run = runs.find(p.run_id);
    if (run != runs.end()) {
      point.name = run->second.record.name;
      point.params = run->second.record.params;
      point.epochs = run->second.epochs_done;
      if (run->second.status == RunStatus::Finished) {
        point.val_acc = run->second.final_val_acc;
        point.test_acc = run->second.final_test_acc;
      }
    }
    any_val = any_val || point.val_acc.has_value();
    point.promoted = keys.count(key.with_rung(point.rung + 1).text()) > 0;
    view.points.push_back(std::move(point));
  }
  view.metric = !row->metric.empty() ? row->metric : any_val ? "val_acc" : "test_acc";
  view.chosen_on_test = view.metric == "test_acc";
  for (auto& p : view.points)  // rank on the one metric the search used
    if (view.metric == "test_acc") p.val_acc.reset();
  std::sort(view.points.begin(), view.points.end(),
            [](const auto& a, const auto& b) { return a.rung != b.rung ? a.rung < b.rung : a.sample < b.sample; });
  // The winner: the best of the last rung once every point of it has ended (ties: the lower sample).
  const int64_t last = static_cast<int64_t>(view.rungs()) - 1;
  bool ended = true;
  SearchView::Point* best = nullptr;
  for (auto& p : view.points) {
    if (p.rung != last || p.status == RunStatus::Rejected) continue;
    ended = ended && has_result(p.status);
    if (p.metric() && (best == nullptr || *p.metric() > *best->metric())) best = &p;
  }
  if (ended && best != nullptr) best->winner = true;
  return view;
}

std::string search_text(const SearchView& view, const std::string& format) {
  const SearchRow& s = view.search;
  if (format == "json") {
    nlohmann::json j = {{"sweep", s.sweep},      {"method", s.method},
                        {"metric", view.metric}, {"chosen_on_test", view.chosen_on_test},
                        {"keys", view.keys},     {"rung_epochs", view.rung_epochs}};
    j["points"] = nlohmann::json::array();
    for (const auto& p : view.points) {
      nlohmann::json values = nlohmann::json::object();
      for (size_t k = 0; k < view.keys.size(); ++k) values[view.keys[k]] = p.values[k];
      nlohmann::json e = {
          {"sample", p.sample}, {"rung", p.rung},         {"values", values},   {"status", status_text(p.status)},
          {"run_id", p.run_id}, {"promoted", p.promoted}, {"winner", p.winner}, {"epochs", p.epochs}};
      if (p.val_acc) e["val_acc"] = *p.val_acc;
      if (p.test_acc) e["test_acc"] = *p.test_acc;
      j["points"].push_back(e);
    }
    return j.dump(2) + "\n";
  }
  std::ostringstream out;
  const bool halving = !view.rung_epochs.empty();
  if (format != "csv") {
    out << "search " << s.sweep << " (" << s.method << ", " << view.keys.size() << " searched keys";
    if (halving) {
      out << "; successive halving on " << view.metric << ", eta " << s.eta << ", rungs of";
      for (size_t r = 0; r < view.rung_epochs.size(); ++r) out << (r ? ", " : " ") << view.rung_epochs[r];
      out << " epochs";
    }
    out << ")\n";
  }
  std::vector<std::string> header{"sample"};
  if (format == "csv") header.insert(header.begin(), "rung");
  header.insert(header.end(), view.keys.begin(), view.keys.end());
  for (const char* h : {"status", "run", "epochs", "val_acc", "test_acc", halving ? "promoted" : "best"})
    header.push_back(h);
  std::vector<std::vector<std::string>> all;
  for (size_t r = 0; r < view.rungs(); ++r) {
    std::vector<std::vector<std::string>> rows;
    size_t promoted = 0, ended = 0, n = 0;
    for (const auto& p : view.points) {
      if (p.rung != static_cast<int64_t>(r)) continue;
      ++n;
      promoted += p.promoted;
      ended += has_result(p.status);
      std::vector<std::string> row{std::to_string(p.sample)};
      if (format == "csv") row.insert(row.begin(), std::to_string(r));
      row.insert(row.end(), p.values.begin(), p.values.end());
      for (const auto& cell : {std::string(status_text(p.status)), p.run_id ? std::to_string(p.run_id) : "-",
                               std::to_string(p.epochs), metric_cell(p.val_acc), metric_cell(p.test_acc),
                               std::string(p.winner     ? "winner"
                                           : p.promoted ? "yes"
                                                        : "")})
        row.push_back(cell);
      rows.push_back(row);
    }
    if (format == "csv") {
      all.insert(all.end(), rows.begin(), rows.end());
      continue;
    }
    if (halving)
      out << "\nrung " << r << ": " << n << " points x " << view.rung_epochs[r] << " epochs, " << ended << " ended"
          << (r + 1 < view.rungs() && promoted ? ", promoted " + std::to_string(promoted) : "") << "\n";
    else
      out << "\n" << n << " points\n";
    out << (rows.empty() ? "(none yet)\n" : render_table(header, rows, format));
  }
  if (format == "csv") return render_table(header, all, format);
  if (view.chosen_on_test)
    out << "\n(chosen on the test split: the search ranked its points by test_acc; no held-out estimate)\n";
  out << "\nrunner compare --sweep " << s.sweep << " --by KEY compares its runs as runs; runner report --sweep "
      << s.sweep << " draws the metric against each key\n";
  return out.str();
}

std::string search_html(const SearchView& view) {
  std::ostringstream s;
  const std::string metric = view.metric + (view.chosen_on_test ? " (chosen on test)" : "");
  s << "<section id=\"search\"><h2>Search " << html_escape(view.search.sweep) << "</h2><p>"
    << html_escape(view.search.method) << " search of " << view.keys.size() << " keys, ranked by "
    << html_escape(metric);
  if (!view.rung_epochs.empty()) {
    s << "; successive halving with eta " << view.search.eta << ", rungs of";
    for (size_t r = 0; r < view.rung_epochs.size(); ++r) s << (r ? ", " : " ") << view.rung_epochs[r];
    s << " epochs";
  }
  s << ". Filled: promoted to the next rung; ringed: the winner.</p><div class=\"charts\">";
  // One scatter per key: x its value (log scale for log_uniform, evenly spaced categories), y the metric.
  const int w = 320, h = 240, left = 46, right = 12, top = 28, bottom = 42;
  double ylo = 1e300, yhi = -1e300;
  for (const auto& p : view.points)
    if (p.metric()) ylo = std::min(ylo, *p.metric()), yhi = std::max(yhi, *p.metric());
  if (ylo > yhi) ylo = 0, yhi = 100;
  if (yhi - ylo < 1) ylo -= 0.5, yhi += 0.5;
  const RoundAxis yaxis = round_axis(ylo, yhi, 4);
  ylo = yaxis.lo, yhi = yaxis.hi;
  const std::vector<double>& yticks = yaxis.ticks;
  auto y_of = [&](double v) { return top + (h - top - bottom) * (1 - (v - ylo) / (yhi - ylo)); };
  for (size_t k = 0; k < view.keys.size(); ++k) {
    const bool categorical = view.kinds[k] == "choice", logx = view.kinds[k] == "log_uniform";
    std::vector<std::string> categories;
    double xlo = 1e300, xhi = -1e300;
    for (const auto& p : view.points) {
      if (categorical) {
        if (std::find(categories.begin(), categories.end(), p.values[k]) == categories.end())
          categories.push_back(p.values[k]);
        continue;
      }
      double v = number(p.values[k]);
      if (std::isnan(v) || (logx && v <= 0)) continue;
      if (logx) v = std::log10(v);
      xlo = std::min(xlo, v), xhi = std::max(xhi, v);
    }
    std::sort(categories.begin(), categories.end());
    if (!categorical && xlo > xhi) xlo = 0, xhi = 1;
    if (!categorical && xhi - xlo < 1e-12) xlo -= 0.5, xhi += 0.5;
    const double xpad = categorical ? 0.5 : (xhi - xlo) * 0.06;
    const double x0 = categorical ? -0.5 : xlo - xpad,
                 x1 = categorical ? static_cast<double>(categories.size()) - 0.5 : xhi + xpad;
    auto x_of = [&](double v) { return left + (w - left - right) * (v - x0) / (x1 - x0); };
    auto x_value = [&](const std::string& text) {
      if (categorical)
        return static_cast<double>(std::find(categories.begin(), categories.end(), text) - categories.begin());
      const double v = number(text);
      return logx ? (v > 0 ? std::log10(v) : std::nan("")) : v;
    };
    s << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"scatter\" data-key=\"" << html_escape(view.keys[k])
      << "\" width=\"" << w << "\" height=\"" << h << "\" viewBox=\"0 0 " << w << " " << h
      << "\" font-family=\"sans-serif\" font-size=\"11\"><rect width=\"" << w << "\" height=\"" << h
      << "\" fill=\"#fff\"/><text x=\"" << w / 2
      << "\" y=\"17\" text-anchor=\"middle\" font-size=\"12\" font-weight=\"bold\">" << html_escape(view.metric)
      << " against " << html_escape(view.keys[k]) << "</text>";
    for (double t : yticks)
      s << "<line x1=\"" << left << "\" x2=\"" << w - right << "\" y1=\"" << fixed_text(y_of(t), 1) << "\" y2=\""
        << fixed_text(y_of(t), 1) << "\" stroke=\"#e5e5e5\"/><text x=\"" << left - 4 << "\" y=\""
        << fixed_text(y_of(t) + 4, 1) << "\" text-anchor=\"end\">" << tick_text(t) << "</text>";
    // x ticks: the categories; decades (and 2, 5 between when few) on a log axis; round values otherwise
    std::vector<std::pair<double, std::string>> xticks;
    if (categorical) {
      for (size_t c = 0; c < categories.size(); ++c) xticks.emplace_back(static_cast<double>(c), categories[c]);
    } else if (logx) {
      for (int e = static_cast<int>(std::floor(x0)); e <= static_cast<int>(std::ceil(x1)); ++e)
        for (double m : (x1 - x0 < 2 ? std::vector<double>{1, 2, 5} : std::vector<double>{1})) {
          const double v = std::log10(m) + e;
          if (v >= x0 && v <= x1) xticks.emplace_back(v, tick_text(m * std::pow(10.0, e)));
        }
    } else {
      for (double t : nice_ticks(x0, x1, 4)) xticks.emplace_back(t, tick_text(t));
    }
    for (const auto& [v, label] : xticks)
      s << "<text x=\"" << fixed_text(x_of(v), 1) << "\" y=\"" << h - bottom + 14 << "\" text-anchor=\"middle\">"
        << html_escape(label) << "</text><line x1=\"" << fixed_text(x_of(v), 1) << "\" x2=\"" << fixed_text(x_of(v), 1)
        << "\" y1=\"" << h - bottom << "\" y2=\"" << h - bottom + 4 << "\" stroke=\"#999\"/>";
    s << "<text x=\"" << (left + w - right) / 2 << "\" y=\"" << h - 8 << "\" text-anchor=\"middle\">"
      << html_escape(view.keys[k]) << (logx ? " (log scale)" : "") << "</text><rect x=\"" << left << "\" y=\"" << top
      << "\" width=\"" << w - left - right << "\" height=\"" << h - top - bottom
      << "\" fill=\"none\" stroke=\"#999\"/>";
    for (const auto& p : view.points) {
      const double xv = x_value(p.values[k]);
      if (!p.metric() || std::isnan(xv)) continue;
      const char* colour = kRungColours[std::min<size_t>(static_cast<size_t>(p.rung), 5)];
      s << "<circle class=\"point\" data-sample=\"" << p.sample << "\" data-rung=\"" << p.rung << "\" cx=\""
        << fixed_text(x_of(xv), 1) << "\" cy=\"" << fixed_text(y_of(*p.metric()), 1) << "\" r=\"" << (p.winner ? 6 : 4)
        << "\" fill=\"" << (p.promoted || p.winner ? colour : "#fff") << "\" stroke=\"" << (p.winner ? "#000" : colour)
        << "\" stroke-width=\"" << (p.winner ? 2 : 1.5) << "\"><title>sample " << p.sample << ", rung " << p.rung
        << ": " << html_escape(view.keys[k]) << " " << html_escape(p.values[k]) << ", " << html_escape(view.metric)
        << " " << fixed_text(*p.metric()) << "</title></circle>";
    }
    s << "</svg>";
  }
  s << "</div><ul class=\"legend\">";
  for (size_t r = 0; r < view.rungs(); ++r)
    s << "<li><svg width=\"12\" height=\"12\"><circle cx=\"6\" cy=\"6\" r=\"4\" fill=\""
      << kRungColours[std::min<size_t>(r, 5)] << "\"/></svg> "
      << (view.rung_epochs.empty()
              ? std::string("points")
              : "rung " + std::to_string(r) + " (" + std::to_string(view.rung_epochs[r]) + " epochs)")
      << "</li>";
  s << "</ul><div class=\"scroll\"><pre>" << html_escape(search_text(view, "table")) << "</pre></div></section>";
  return s.str();
}

}  // namespace runner
