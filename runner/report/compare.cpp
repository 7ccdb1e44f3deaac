#include "runner/report/compare.h"

#include <algorithm>
#include <boost/math/distributions/students_t.hpp>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>

#include "runner/base/errors.h"
#include "runner/config/config.h"
#include "runner/config/spec_json.h"
#include "runner/config/yaml_reader.h"

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

double welch_p_value(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() < 2 || b.size() < 2) return std::nan("");
  const auto [ma, sa] = mean_std(a);
  const auto [mb, sb] = mean_std(b);
  const double va = sa * sa / static_cast<double>(a.size()), vb = sb * sb / static_cast<double>(b.size());
  if (va + vb <= 0) return std::nan("");
  const double t = (ma - mb) / std::sqrt(va + vb);
  const double df = (va + vb) * (va + vb) /
                    (va * va / static_cast<double>(a.size() - 1) + vb * vb / static_cast<double>(b.size() - 1));
  // Two-sided: twice the upper tail of Student's t at |t| with Welch's degrees of freedom.
  return 2 * boost::math::cdf(boost::math::complement(boost::math::students_t(df), std::fabs(t)));
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

/// A config key's value for a run: the recorded (expanded) config's, or, for what only the
/// YAML as written has (a block's parameter such as model.blocks.net.params.stem), the YAML's.
std::string run_value(const RunRow& run, const nlohmann::json& config, const std::string& key) {
  const nlohmann::json v = json_at(config, key);
  if (!v.is_null()) return value_text(v);
  return yaml_scalar_at(run.record.config_yaml, key).value_or("(unset)");
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

/// Every leaf of a config as dotted key → value text (list items by index), except
/// the keys a comparison may differ in without being another experiment.
void flatten(const nlohmann::json& v, const std::string& path, const std::vector<std::string>& skip,
             std::map<std::string, std::string>& out) {
  if (std::find(skip.begin(), skip.end(), path) != skip.end()) return;
  if (v.is_object() && !v.empty()) {
    for (const auto& [k, child] : v.items()) flatten(child, path.empty() ? k : path + "." + k, skip, out);
  } else if (v.is_array() && !v.empty()) {
    for (size_t i = 0; i < v.size(); ++i) flatten(v[i], path + "." + std::to_string(i), skip, out);
  } else {
    out[path] = value_text(v);
  }
}

}  // namespace

std::vector<std::string> same_experiment_exceptions(const std::vector<std::string>& by) {
  std::vector<std::string> keys = by;
  for (const char* k :
       {"name", "description", "train.seed", "data.root", "train.threads", "train.device", "train.layout"})
    keys.emplace_back(k);
  return keys;
}

namespace {

using Leaves = std::map<std::string, std::string>;

/// A run's YAML without its `seed:` and `name:` lines: what runs of one experiment share.
std::string yaml_without_seed_and_name(const std::string& yaml) {
  std::string out;
  for (size_t start = 0; start < yaml.size();) {
    const size_t end = std::min(yaml.find('\n', start), yaml.size());
    const size_t first = yaml.find_first_not_of(" \t", start);
    const bool drop = first < end && (yaml.compare(first, 5, "seed:") == 0 || yaml.compare(first, 5, "name:") == 0);
    if (!drop) out.append(yaml, start, end - start + 1);
    start = end + 1;
  }
  return out;
}

/// The keys whose values are not all the same over `configs` ("(unset)" where one lacks a key).
std::set<std::string> differing_keys(const std::vector<Leaves>& configs) {
  std::set<std::string> all, differ;
  for (const auto& flat : configs)
    for (const auto& [k, value] : flat) all.insert(k);
  for (const auto& k : all) {
    std::set<std::string> values;
    for (const auto& flat : configs) {
      const auto it = flat.find(k);
      values.insert(it == flat.end() ? "(unset)" : it->second);
    }
    if (values.size() > 1) differ.insert(k);
  }
  return differ;
}

}  // namespace

Variation find_variation(const std::vector<RunRow>& runs, const std::vector<std::string>& by) {
  const std::vector<std::string> skip = same_experiment_exceptions(by);
  Variation v;
  std::vector<Leaves> recorded, as_written, by_fixed;  // distinct configs only
  // The --by keys' values of the first run, to resolve every run's YAML with (see below).
  std::vector<std::string> fix;
  if (!runs.empty()) {
    const nlohmann::json first = nlohmann::json::parse(runs.front().record.config_json, nullptr, false);
    for (const auto& key : by)
      if (const std::string value = run_value(runs.front(), first, key); value != "(unset)")
        fix.push_back(key + "=" + value);
  }
  // Runs of one experiment differ only in what flatten skips (seed, name, ...), so most share their
  // leaves: each distinct config is kept and compared once (1,000 runs: 1.7 s before, see bench/ui.sh).
  std::unordered_map<std::string, size_t> recorded_index, resolved_index;
  std::vector<size_t> rec_of(runs.size()), res_of(runs.size());
  for (size_t r = 0; r < runs.size(); ++r) {
    const RunRow& run = runs[r];
    Leaves flat;
    flatten(nlohmann::json::parse(run.record.config_json, nullptr, false), "", skip, flat);
    std::string leaves_text;
    for (const auto& [k, value] : flat) leaves_text += k + "=" + value + "\x1f";
    const auto [rec, fresh_rec] = recorded_index.emplace(leaves_text, recorded.size());
    if (fresh_rec) recorded.push_back(flat);
    rec_of[r] = rec->second;
    // The recorded config is resolved: a layer's norm type follows model.norm.
    // Resolving the run's YAML again, as written and with the --by keys set alike,
    // shows which differences the --by keys cause; a YAML that no longer parses
    // keeps its recorded leaves (it may split a row, never merge two). Runs whose
    // recorded leaves and YAML agree but for the seed and name lines resolve alike.
    const std::string key =
        run.record.experiment_file + "\x1e" + yaml_without_seed_and_name(run.record.config_yaml) + "\x1e" + leaves_text;
    const auto [res, fresh_res] = resolved_index.emplace(key, as_written.size());
    if (fresh_res) {
      Leaves written, fixed;
      try {
        flatten(experiment_json(parse_experiment(run.record.config_yaml, run.record.experiment_file)), "", skip,
                written);
        flatten(experiment_json(parse_experiment(run.record.config_yaml, run.record.experiment_file, fix)), "", skip,
                fixed);
      } catch (const std::exception&) {
        written = flat, fixed = flat;
      }
      as_written.push_back(std::move(written));
      by_fixed.push_back(std::move(fixed));
    }
    res_of[r] = res->second;
  }
  // Runs are one experiment when their configs resolved with the --by keys set
  // alike are equal; differences only the recorded configs show (an ${VAR} that
  // expanded otherwise then) count too, with the recorded values.
  const std::set<std::string> fixed_differ = differing_keys(by_fixed), written_differ = differing_keys(as_written);
  std::vector<Leaves> leaves(runs.size());
  for (const auto& k : differing_keys(recorded))
    if (fixed_differ.count(k) == 0 && written_differ.count(k) == 0) v.keys.push_back(k);
  for (size_t r = 0; r < runs.size(); ++r)
    for (const auto& k : v.keys) {
      const auto it = recorded[rec_of[r]].find(k);
      if (it != recorded[rec_of[r]].end()) leaves[r][k] = it->second;
    }
  for (const auto& k : fixed_differ) {
    v.keys.push_back(k);
    for (size_t r = 0; r < runs.size(); ++r) {
      const auto it = by_fixed[res_of[r]].find(k);
      if (it != by_fixed[res_of[r]].end()) leaves[r][k] = it->second;
    }
  }
  std::sort(v.keys.begin(), v.keys.end());
  std::map<std::string, size_t> index;  // experiment fingerprint → position in v.experiments
  // Each distinct combination of the differing keys' values is one experiment.
  for (size_t r = 0; r < runs.size(); ++r) {
    std::vector<std::string> values;
    for (const auto& k : v.keys) {
      const auto it = leaves[r].find(k);
      values.push_back(it == leaves[r].end() ? "(unset)" : it->second);
    }
    const std::string fingerprint = join(values, "\x1f");
    auto [it, fresh] = index.emplace(fingerprint, v.experiments.size());
    if (fresh) v.experiments.push_back({values, {}, ""});
    v.experiments[it->second].run_ids.push_back(runs[r].id);
    v.run_experiment.push_back(it->second);
  }
  // Labels for the table: the experiment's sweep where that names it alone, else its first run.
  std::map<std::string, int> sweep_uses;
  std::vector<std::string> sweep_of(v.experiments.size());
  for (size_t e = 0; e < v.experiments.size(); ++e) {
    std::set<std::string> sweeps;
    for (size_t r = 0; r < runs.size(); ++r)
      if (v.run_experiment[r] == e) sweeps.insert(runs[r].record.sweep);
    if (sweeps.size() == 1 && !sweeps.begin()->empty()) sweep_uses[sweep_of[e] = *sweeps.begin()]++;
  }
  for (size_t e = 0; e < v.experiments.size(); ++e) {
    const auto& ids = v.experiments[e].run_ids;
    const int64_t first_id = *std::min_element(ids.begin(), ids.end());
    v.experiments[e].label =
        !sweep_of[e].empty() && sweep_uses[sweep_of[e]] == 1 ? sweep_of[e] : "run " + std::to_string(first_id);
  }
  return v;
}

namespace {

/// Below a table whose "experiment" column stands for many differing keys: which.
std::string experiment_note(const std::vector<std::string>& differing, const std::vector<std::string>& by) {
  std::string listed;
  for (size_t i = 0; i < differing.size() && i < 6; ++i) listed += (i ? ", " : "") + differing[i];
  if (differing.size() > 6) listed += ", …";
  return "experiment: these runs differ in " + std::to_string(differing.size()) + " config keys besides " + join(by) +
         " and the seed (" + listed +
         "), so each row holds the runs of one config, named by its sweep or its first "
         "run; `runner show ID` prints a config, --where KEY=VALUE or --sweep NAME compares fewer.\n";
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
    for (const auto& [key, value] : filters) keep = keep && run_value(run, config, key) == value;
    if (keep) out.push_back(run);
  }
  return out;
}

std::string render_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
                         const std::string& format) {
  std::string out;
  if (format == "csv") {
    auto csv = [](const std::vector<std::string>& cells) {
      std::string line;
      for (const auto& c : cells) line += (line.empty() ? "" : ",") + ("\"" + c + "\"");
      return line + "\n";
    };
    out = csv(header);
    for (const auto& r : rows) out += csv(r);
    return out;
  }
  std::vector<size_t> width(header.size());
  for (size_t c = 0; c < header.size(); ++c) {
    width[c] = header[c].size();
    for (const auto& r : rows)
      width[c] = std::max(width[c], r[c].size() - (r[c].find("±") != std::string::npos ? 1 : 0));
  }
  const bool md = format == "markdown";
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
    for (size_t c = 0; c < header.size(); ++c)
      rule += (c == 0 ? " :" : " ") + std::string(width[c] - 1, '-') + (c == 0 ? " |" : ": |");
    out += rule + "\n";
  }
  for (const auto& r : rows) out += line(r);
  return out;
}

CompareTable compare_table(const std::vector<RunRow>& all_runs, const CompareOptions& options) {
  const std::vector<std::string> keys = split_commas(options.by);
  if (keys.empty() || std::find(keys.begin(), keys.end(), "") != keys.end())
    throw ConfigError("--by " + options.by + ": expected KEY or KEY,KEY…, e.g. --by model.norm");
  std::vector<RunRow> finished;
  for (const auto& run : select_runs(all_runs, options.where, options.sweep))
    if (run.status == RunStatus::Finished && run.final_test_acc) finished.push_back(run);
  // A row holds runs of one experiment: configs equal but for the --by keys, the
  // seed, the name and the description. Where the runs differ in more, a few
  // keys become columns; many (another network) become one "experiment" column.
  const Variation variation = find_variation(finished, keys);
  const bool labelled = variation.keys.size() > kMaxKeyColumns;
  const std::vector<std::string> extra_header = labelled ? std::vector<std::string>{"experiment"} : variation.keys;
  std::map<std::string, Group> groups;
  std::map<std::string, std::vector<std::string>> key_values, extra_values;  // group → one value per key / column
  std::map<std::string, std::string> group_name;                             // group → its first cell
  for (size_t r = 0; r < finished.size(); ++r) {
    const RunRow& run = finished[r];
    const nlohmann::json config = nlohmann::json::parse(run.record.config_json, nullptr, false);
    std::vector<std::string> values;
    for (const auto& key : keys) values.push_back(run_value(run, config, key));
    const auto& experiment = variation.experiments[variation.run_experiment[r]];
    const std::vector<std::string> extras = labelled ? std::vector<std::string>{experiment.label} : experiment.values;
    const std::string name = join(values) + "\x1f" + join(extras, "\x1f");
    key_values[name] = values;
    extra_values[name] = extras;
    group_name[name] = join(values);
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
  std::vector<std::string> header{by_header};
  header.insert(header.end(), extra_header.begin(), extra_header.end());
  for (const char* h : {"runs", "params", "epochs"}) header.push_back(h);
  if (any_val) header.push_back("final val %");
  for (const char* h : {"final test %", "best test %", "final train %", "train-test gap", "s/epoch", "target met"})
    header.push_back(h);
  if (with_test) header.push_back(std::string("vs best ") + (options.rank == "val" ? "val" : "test") + " (Welch p)");
  std::vector<std::vector<std::string>> rows;
  nlohmann::json json = nlohmann::json::array();
  for (const auto& [key, group] : order) {
    const Group& g = *group;
    std::vector<std::string> row{group_name[key]};
    row.insert(row.end(), extra_values[key].begin(), extra_values[key].end());
    for (const auto& cell : {std::to_string(g.runs), std::to_string(g.params), std::to_string(g.epochs)})
      row.push_back(cell);
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
    nlohmann::json entry = {{by_header, group_name[key]},
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
    // The keys the rows differ in beyond --by ("experiment" where many), as the table's columns.
    entry["differs"] = nlohmann::json::object();
    for (size_t k = 0; k < extra_header.size(); ++k) entry["differs"][extra_header[k]] = extra_values[key][k];
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
  return {header, rows, labelled ? experiment_note(variation.keys, keys) : "", json};
}

std::string compare_runs(const std::vector<RunRow>& runs, const CompareOptions& options) {
  const CompareTable table = compare_table(runs, options);
  if (options.format == "json") return table.json.dump(2) + "\n";
  if (table.rows.empty() && options.format != "csv") return "no finished runs match\n";
  std::string out = render_table(table.header, table.rows, options.format);
  if (!table.note.empty() && options.format != "csv") out += "\n" + table.note;
  return out;
}

}  // namespace runner
