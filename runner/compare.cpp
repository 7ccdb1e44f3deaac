#include "runner/compare.h"

#include <cmath>
#include <algorithm>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "runner/errors.h"
#include "runner/spec_json.h"
#include "runner/yaml_reader.h"

namespace runner {

std::pair<double, double> mean_std(const std::vector<double>& values) {
  if (values.empty()) return {0, 0};
  double sum = 0;
  for (double v : values) sum += v;
  const double mean = sum / static_cast<double>(values.size());
  if (values.size() < 2) return {mean, 0};
  double sq = 0;
  for (double v : values) sq += (v - mean) * (v - mean);
  return {mean, std::sqrt(sq / static_cast<double>(values.size() - 1))};
}

namespace {

/// Regularized incomplete beta I_x(a, b) by its continued fraction (modified Lentz).
double incomplete_beta(double x, double a, double b) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  if (x > (a + 1) / (a + b + 2)) return 1 - incomplete_beta(1 - x, b, a);  // where the fraction converges fast
  const double front = std::exp(std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) +
                                b * std::log1p(-x)) / a;
  const double tiny = 1e-300;
  double f = 1, c = 1, d = 0;
  for (int i = 0; i <= 400; ++i) {
    const int m = i / 2;
    double numerator;
    if (i == 0)
      numerator = 1;
    else if (i % 2 == 0)
      numerator = (m * (b - m) * x) / ((a + 2.0 * m - 1) * (a + 2.0 * m));
    else
      numerator = -((a + m) * (a + b + m) * x) / ((a + 2.0 * m) * (a + 2.0 * m + 1));
    d = 1 + numerator * d;
    d = 1 / (std::fabs(d) < tiny ? tiny : d);
    c = 1 + numerator / c;
    if (std::fabs(c) < tiny) c = tiny;
    f *= c * d;
    if (std::fabs(1 - c * d) < 1e-12) break;
  }
  return front * (f - 1);
}

}  // namespace

double welch_p_value(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() < 2 || b.size() < 2) return std::nan("");
  const auto [ma, sa] = mean_std(a);
  const auto [mb, sb] = mean_std(b);
  const double va = sa * sa / static_cast<double>(a.size()), vb = sb * sb / static_cast<double>(b.size());
  if (va + vb <= 0) return std::nan("");
  const double t = (ma - mb) / std::sqrt(va + vb);
  const double df = (va + vb) * (va + vb) /
                    (va * va / static_cast<double>(a.size() - 1) + vb * vb / static_cast<double>(b.size() - 1));
  return incomplete_beta(df / (df + t * t), df / 2, 0.5);
}

namespace {

/// "a,b" → {"a", "b"}; "" → {}.
std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> parts;
  for (size_t start = 0; !text.empty() && start <= text.size();) {
    const size_t comma = std::min(text.find(',', start), text.size());
    parts.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return parts;
}

std::string value_text(const nlohmann::json& v) {
  if (v.is_null()) return "(unset)";
  return v.is_string() ? v.get<std::string>() : v.dump();
}

std::string fixed(double v, int digits = 2) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

struct Group {
  std::vector<double> final_acc, best_acc, train_acc, gap, seconds, val_acc;
  int64_t params = 0, epochs = 0, met = 0, runs = 0;
};

std::string stat_text(const std::vector<double>& values, bool with_std) {
  const auto [mean, sd] = mean_std(values);
  return with_std && values.size() > 1 ? fixed(mean) + " ± " + fixed(sd) : fixed(mean);
}

}  // namespace

std::vector<RunRow> select_runs(const std::vector<RunRow>& runs, const std::vector<std::string>& where,
                                const std::string& sweep) {
  std::vector<std::pair<std::string, std::string>> filters;
  for (const auto& w : where) {
    const size_t eq = w.find('=');
    if (eq == std::string::npos || eq == 0)
      throw ConfigError("--where " + w + ": expected KEY=VALUE, e.g. --where model.norm=batch");
    filters.emplace_back(w.substr(0, eq), w.substr(eq + 1));
  }
  const std::vector<std::string> sweeps = split_commas(sweep);  // "a,b": runs of either sweep
  std::vector<RunRow> out;
  for (const auto& run : runs) {
    if (!sweeps.empty() && std::find(sweeps.begin(), sweeps.end(), run.record.sweep) == sweeps.end()) continue;
    const nlohmann::json config = nlohmann::json::parse(run.record.config_json, nullptr, false);
    bool keep = true;
    for (const auto& [key, value] : filters) keep = keep && value_text(json_at(config, key)) == value;
    if (keep) out.push_back(run);
  }
  return out;
}

std::string compare_runs(const std::vector<RunRow>& all_runs, const CompareOptions& options) {
  const std::vector<std::string> keys = split_commas(options.by);
  if (keys.empty() || std::find(keys.begin(), keys.end(), "") != keys.end())
    throw ConfigError("--by " + options.by + ": expected KEY or KEY,KEY…, e.g. --by model.norm");
  std::map<std::string, Group> groups;
  std::map<std::string, std::vector<std::string>> key_values;  // group → one value per key
  for (const auto& run : select_runs(all_runs, options.where, options.sweep)) {
    if (run.status != "finished" || !run.final_test_acc) continue;
    const nlohmann::json config = nlohmann::json::parse(run.record.config_json, nullptr, false);
    std::vector<std::string> values;
    for (const auto& key : keys) values.push_back(value_text(json_at(config, key)));
    const std::string name = join(values);
    key_values[name] = values;
    Group& g = groups[name];
    g.runs++;
    g.final_acc.push_back(*run.final_test_acc);
    g.best_acc.push_back(run.best_test_acc.value_or(0));
    g.train_acc.push_back(run.final_train_acc.value_or(0));
    g.gap.push_back(run.final_train_acc.value_or(0) - *run.final_test_acc);
    g.seconds.push_back(run.seconds_per_epoch);
    if (run.final_val_acc) g.val_acc.push_back(*run.final_val_acc);
    g.params = std::max(g.params, run.record.params);
    g.epochs = std::max(g.epochs, run.epochs_done);
    g.met += run.target_met.value_or(false) ? 1 : 0;
  }

  if (options.rank != "" && options.rank != "val" && options.rank != "test")
    throw ConfigError("--rank " + options.rank + ": expected val (final validation accuracy) or test");
  bool any_val = false;
  for (const auto& [key, g] : groups) any_val = any_val || !g.val_acc.empty();
  if (options.rank == "val" && !any_val && !groups.empty())
    throw ConfigError("--rank val: none of these runs held out a validation split (set data.validation)");
  auto ranked_metric = [&](const Group& g) -> const std::vector<double>& {
    return options.rank == "val" ? g.val_acc : g.final_acc;
  };
  std::vector<std::pair<std::string, const Group*>> order;
  for (const auto& [key, g] : groups) order.emplace_back(key, &g);
  if (!options.rank.empty()) {  // best first; groups without the metric last
    auto score = [&](const Group* g) {
      const auto& v = ranked_metric(*g);
      return v.empty() ? -1.0 : mean_std(v).first;
    };
    std::stable_sort(order.begin(), order.end(),
                     [&](const auto& a, const auto& b) { return score(a.second) > score(b.second); });
  }

  // With a ranking and repeated seeds: is each group really behind the best, or within the seeds' spread?
  const Group* best = order.empty() ? nullptr : order.front().second;
  bool any_repeats = false;
  for (const auto& [key, g] : groups) any_repeats = any_repeats || g.runs > 1;
  const bool with_test = !options.rank.empty() && any_repeats;

  const std::string by_header = join(keys);
  std::vector<std::string> header{by_header, "runs", "params", "epochs"};
  if (any_val) header.push_back("final val %");
  for (const char* h : {"final test %", "best test %", "final train %", "train-test gap", "s/epoch", "target met"})
    header.push_back(h);
  if (with_test) header.push_back(std::string("vs best ") + (options.rank == "val" ? "val" : "test") + " (Welch p)");
  std::vector<std::vector<std::string>> rows;
  nlohmann::json json = nlohmann::json::array();
  for (const auto& [key, group] : order) {
    const Group& g = *group;
    std::vector<std::string> row{key, std::to_string(g.runs), std::to_string(g.params), std::to_string(g.epochs)};
    if (any_val) row.push_back(g.val_acc.empty() ? "-" : stat_text(g.val_acc, true));
    for (const auto& cell : {stat_text(g.final_acc, true), stat_text(g.best_acc, true), stat_text(g.train_acc, true),
                             stat_text(g.gap, true), fixed(mean_std(g.seconds).first, 1),
                             std::to_string(g.met) + "/" + std::to_string(g.runs)})
      row.push_back(cell);
    double delta = 0, p = std::nan("");
    if (with_test && &g != best) {
      delta = mean_std(ranked_metric(g)).first - mean_std(ranked_metric(*best)).first;
      p = welch_p_value(ranked_metric(g), ranked_metric(*best));
    }
    if (with_test)
      row.push_back(&g == best ? "best" : fixed(delta) + (std::isnan(p) ? "" : " (p " + fixed(p, 3) + ")"));
    rows.push_back(row);
    nlohmann::json entry = {{by_header, key},
                            {"runs", g.runs},
                            {"params", g.params},
                            {"epochs", g.epochs},
                            {"final_test_acc_mean", mean_std(g.final_acc).first},
                            {"final_test_acc_std", mean_std(g.final_acc).second},
                            {"best_test_acc_mean", mean_std(g.best_acc).first},
                            {"best_test_acc_std", mean_std(g.best_acc).second},
                            {"final_train_acc_mean", mean_std(g.train_acc).first},
                            {"train_test_gap_mean", mean_std(g.gap).first},
                            {"seconds_per_epoch", mean_std(g.seconds).first},
                            {"target_met", g.met}};
    if (keys.size() > 1)
      for (size_t k = 0; k < keys.size(); ++k) entry[keys[k]] = key_values[key][k];
    if (with_test && &g != best) {
      entry["delta_to_best"] = delta;
      if (!std::isnan(p)) entry["welch_p"] = p;
    }
    if (!g.val_acc.empty()) {
      entry["final_val_acc_mean"] = mean_std(g.val_acc).first;
      entry["final_val_acc_std"] = mean_std(g.val_acc).second;
    }
    json.push_back(entry);
  }
  if (options.format == "json") return json.dump(2) + "\n";
  std::string out;
  if (options.format == "csv") {
    auto csv = [](const std::vector<std::string>& cells) {
      std::string line;
      for (const auto& c : cells) line += (line.empty() ? "" : ",") + ("\"" + c + "\"");
      return line + "\n";
    };
    out = csv(header);
    for (const auto& r : rows) out += csv(r);
    return out;
  }
  if (rows.empty()) return "no finished runs match\n";
  std::vector<size_t> width(header.size());
  for (size_t c = 0; c < header.size(); ++c) {
    width[c] = header[c].size();
    for (const auto& r : rows) width[c] = std::max(width[c], r[c].size() - (r[c].find("±") != std::string::npos ? 1 : 0));
  }
  const bool md = options.format == "markdown";
  auto line = [&](const std::vector<std::string>& cells) {
    std::string text = md ? "| " : "";
    for (size_t c = 0; c < cells.size(); ++c) {
      const size_t shown = cells[c].size() - (cells[c].find("±") != std::string::npos ? 1 : 0);
      const std::string pad(width[c] - shown, ' ');
      text += (c == 0 ? cells[c] + pad : pad + cells[c]) + (md ? " | " : "  ");
    }
    return text.substr(0, text.find_last_not_of(' ') + 1) + "\n";
  };
  out = line(header);
  if (md) {
    std::string rule = "|";
    for (size_t c = 0; c < header.size(); ++c) rule += (c == 0 ? " :" : " ") + std::string(width[c] - 1, '-') + (c == 0 ? " |" : ": |");
    out += rule + "\n";
  }
  for (const auto& r : rows) out += line(r);
  return out;
}

}  // namespace runner
