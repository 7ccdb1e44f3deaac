#include "runner/config/grid.h"

#include <yaml-cpp/yaml.h>

#include <boost/random/mersenne_twister.hpp>
#include <boost/random/sobol.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <optional>
#include <regex>

#include "runner/base/errors.h"
#include "runner/config/config.h"
#include "runner/config/spec_json.h"
#include "runner/config/yaml_reader.h"

namespace runner {
namespace fs = std::filesystem;

namespace {
std::string flow_text(const YAML::Node& node) {
  if (node.IsScalar()) return node.Scalar();
  YAML::Emitter out;
  out << YAML::Flow << node;
  return out.c_str();
}

/// "[low, high]" of a distribution, as two numbers.
bool read_bounds(Reader& reader, const YAML::Node& node, const std::string& path, double& low, double& high) {
  if (!node.IsSequence() || node.size() != 2) {
    reader.error(node, path, "expected [low, high], e.g. [0.02, 0.4]");
    return false;
  }
  const auto a = reader.to_double(node[0], path + ".0", Range::Any),
             b = reader.to_double(node[1], path + ".1", Range::Any);
  if (!a || !b) return false;
  low = *a, high = *b;
  return true;
}

/// One entry of search.space: a list (categorical) or {uniform|log_uniform: [a, b]} or {int: [a, b], step: s}.
std::optional<Distribution> read_distribution(Reader& reader, const YAML::Node& node, const std::string& path) {
  Distribution d;
  if (node.IsSequence()) {
    if (node.size() == 0) {
      reader.error(node, path, "a categorical list needs at least one value");
      return std::nullopt;
    }
    d.kind = Distribution::Kind::Choice;
    for (const auto& v : node) d.choices.push_back(flow_text(v));
    return d;
  }
  static const std::vector<std::string> kinds{"uniform", "log_uniform", "int"};
  if (!node.IsMap() || node.size() == 0) {
    reader.error(node, path,
                 "expected a list of values or one of {uniform: [a, b]}, {log_uniform: [a, b]}, "
                 "{int: [a, b], step: s}");
    return std::nullopt;
  }
  std::string kind;
  for (const auto& item : node) {
    const std::string k = item.first.Scalar();
    if (k == "step") continue;
    if (std::find(kinds.begin(), kinds.end(), k) == kinds.end() || !kind.empty()) {
      const std::string near = did_you_mean(k, kinds);
      reader.error(item.first, path + "." + k,
                   (kind.empty() ? "unknown distribution '" + k + "'" : "a second distribution '" + k + "'") +
                       (near.empty() ? "" : " (did you mean '" + near + "'?)") +
                       "; expected one of uniform, log_uniform, int");
      return std::nullopt;
    }
    kind = k;
  }
  if (kind.empty()) {
    reader.error(node, path, "step alone is no distribution; write {int: [a, b], step: s}");
    return std::nullopt;
  }
  const std::string at = path + "." + kind;
  if (!read_bounds(reader, node[kind], at, d.low, d.high)) return std::nullopt;
  if (d.low >= d.high) {
    reader.error(node[kind], at,
                 "low must be below high, got [" + flow_text(node[kind][0]) + ", " + flow_text(node[kind][1]) + "]");
    return std::nullopt;
  }
  if (kind == "log_uniform") {
    d.kind = Distribution::Kind::LogUniform;
    if (d.low <= 0) {
      reader.error(node[kind], at,
                   "log_uniform needs positive bounds (the log of " + flow_text(node[kind][0]) +
                       " is undefined); use uniform for ranges that reach 0");
      return std::nullopt;
    }
  } else if (kind == "int") {
    d.kind = Distribution::Kind::Int;
    if (d.low != std::floor(d.low) || d.high != std::floor(d.high)) {
      reader.error(node[kind], at, "int bounds must be integers");
      return std::nullopt;
    }
    if (node["step"]) {
      const auto step = reader.to_int(node["step"], path + ".step", Range::Positive);
      if (!step) return std::nullopt;
      d.step = *step;
    }
  } else if (node["step"]) {
    reader.error(node["step"], path + ".step", "step applies to int only");
    return std::nullopt;
  }
  return d;
}

std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

}  // namespace

std::string Distribution::value_at(double u) const {
  switch (kind) {
    case Kind::Uniform:
      return number_text(low + u * (high - low));
    case Kind::LogUniform:
      return number_text(std::exp(std::log(low) + u * (std::log(high) - std::log(low))));
    case Kind::Int: {
      const auto lo = static_cast<int64_t>(low), count = (static_cast<int64_t>(high) - lo) / step + 1;
      return std::to_string(lo +
                            step * std::min<int64_t>(count - 1, static_cast<int64_t>(u * static_cast<double>(count))));
    }
    case Kind::Choice:
      break;
  }
  const auto n = static_cast<int64_t>(choices.size());
  return choices[static_cast<size_t>(std::min<int64_t>(n - 1, static_cast<int64_t>(u * static_cast<double>(n))))];
}

std::vector<int64_t> HalvingSpec::rung_epochs() const {
  std::vector<int64_t> epochs;
  if (!enabled || min_epochs < 1 || eta < 2) return epochs;
  for (int64_t e = min_epochs;; e *= eta) {
    epochs.push_back(std::min(e, max_epochs));
    if (e >= max_epochs) break;
  }
  return epochs;
}

std::vector<std::vector<double>> search_draws(const SearchSpec& search) {
  const size_t dims = search.space.size();
  std::vector<std::vector<double>> draws(static_cast<size_t>(std::max<int64_t>(search.samples, 0)),
                                         std::vector<double>(dims));
  if (dims == 0) return draws;
  // Both engines are fully specified, so the draws are the same with any compiler or standard library.
  const double below_one = std::nextafter(1.0, 0.0);
  if (search.method == "sobol") {
    boost::random::sobol sobol(dims);
    sobol.seed(static_cast<boost::uintmax_t>(search.seed));  // skips `seed` points of the sequence
    for (auto& row : draws)
      for (auto& u : row) u = std::min(below_one, std::ldexp(static_cast<double>(sobol() - (sobol.min)()), -64));
  } else {
    boost::random::mt19937_64 random(static_cast<uint64_t>(search.seed));
    for (auto& row : draws)
      for (auto& u : row) u = std::ldexp(static_cast<double>(random() >> 11), -53);
  }
  return draws;
}

GridSpec load_grid(const std::string& path) {
  GridSpec grid;
  grid.file = path;
  grid.sweep = fs::path(path).stem().string();
  std::string why;
  const std::optional<std::string> text = read_text_file(path, &why);
  if (!text) throw ConfigError({Diagnostic{SourceLoc{path, 0, 0}, "", "cannot open the grid file: " + why}});
  const YAML::Node root = load_yaml(*text, path);
  if (!root.IsMap())
    throw ConfigError({Diagnostic{SourceLoc{path, 1, 1}, "", "a grid file is a map with base, grid, seeds, name"}});
  Reader reader(path, {});
  MapView top(reader, root, "", {"base", "grid", "seeds", "name", "sweep", "search", "halving"});
  if (top.require("base")) {
    top.get("base", grid.base);
    // Relative to the grid file, so a grid works from any working directory.
    if (!grid.base.empty() && fs::path(grid.base).is_relative())
      grid.base = (fs::path(path).parent_path() / grid.base).lexically_normal().string();
    std::error_code ec;  // a name too long or unreadable is a config problem, not a crash
    if (!grid.base.empty() && !fs::is_regular_file(grid.base, ec))
      reader.error(top.node("base"), "base",
                   "no experiment file at " + grid.base + (ec ? " (" + ec.message() + ")" : std::string()));
  }
  top.get("sweep", grid.sweep);
  static const std::regex kName("[a-z0-9._-]+");
  if (!std::regex_match(grid.sweep, kName))
    reader.error(top.has("sweep") ? top.node("sweep") : root, "sweep",
                 "sweep name '" + grid.sweep + "' must match [a-z0-9._-]+ (set sweep: NAME)");
  if (top.has("search")) {
    MapView m(reader, top.node("search"), "search", {"method", "samples", "seed", "space"});
    SearchSpec& search = grid.search;
    const size_t before = reader.error_count();
    m.get_choice("method", search.method, {"grid", "random", "sobol"});
    // An unknown method is reported once; the rest is read as a sampled search, as the file meant.
    if (reader.error_count() != before) search.method = "random";
    m.get("samples", search.samples, Range::Positive);
    m.get("seed", search.seed, Range::NonNegative);
    if (grid.sampled()) {
      m.require("samples");
      if (m.require("space")) {
        const YAML::Node space = m.node("space");
        if (!space.IsMap() || space.size() == 0)
          reader.error(space, "search.space",
                       "must be a map of dotted keys to distributions, e.g. "
                       "train.optimizer.lr: {log_uniform: [0.02, 0.4]}");
        else
          for (const auto& entry : space) {
            const std::string key = entry.first.Scalar(), at = "search.space." + key;
            if (auto d = read_distribution(reader, entry.second, at)) {
              search.space.emplace_back(key, *d);
              search.space_locs.push_back(reader.loc_of(entry.first, at));
            }
          }
      }
    } else if (m.has("space") || m.has("samples")) {
      reader.error(m.node(m.has("space") ? "space" : "samples"), "search.method",
                   "samples and space need method: random or sobol (grid takes its values from grid:)");
    }
  }
  if (top.has("halving")) {
    MapView m(reader, top.node("halving"), "halving", {"metric", "min_epochs", "eta", "max_epochs"});
    HalvingSpec& h = grid.halving;
    h.enabled = true;
    h.loc = reader.loc_of(top.node("halving"), "halving");
    m.get_choice("metric", h.metric, {"val_acc", "test_acc"});
    if (m.has("metric"))
      h.metric_loc = reader.loc_of(m.node("metric"), "halving.metric");
    else
      h.metric_loc = h.loc;
    if (m.require("min_epochs")) m.get("min_epochs", h.min_epochs, Range::Positive);
    m.get("eta", h.eta, Range::Positive);
    if (m.has("eta") && h.eta < 2)
      reader.error(m.node("eta"), "halving.eta", "eta must be at least 2 (keep 1/eta each rung)");
    if (m.require("max_epochs")) {
      m.get("max_epochs", h.max_epochs, Range::Positive);
      h.max_epochs_loc = reader.loc_of(m.node("max_epochs"), "halving.max_epochs");
      if (h.min_epochs > 0 && h.max_epochs > 0 && h.max_epochs < h.min_epochs)
        reader.error(m.node("max_epochs"), "halving.max_epochs",
                     "max_epochs must be at least min_epochs (" + std::to_string(h.min_epochs) + ")");
    }
  }
  if (grid.sampled() && !top.has("grid")) {
    // A sampled search needs no grid: one combination.
  } else if (top.require("grid")) {
    const YAML::Node axes = top.node("grid");
    if (!axes.IsMap() || axes.size() == 0) {
      reader.error(axes, "grid", "must be a map of dotted keys to lists of values, e.g. model.norm: [batch, group]");
    } else {
      for (const auto& axis : axes) {
        const std::string key = axis.first.Scalar();
        if (!axis.second.IsSequence() || axis.second.size() == 0) {
          reader.error(axis.second, "grid." + key, "must be a non-empty list of values");
          continue;
        }
        std::vector<std::string> values;
        std::vector<SourceLoc> value_locs;
        for (size_t v = 0; v < axis.second.size(); ++v) {
          values.push_back(flow_text(axis.second[v]));
          value_locs.push_back(reader.loc_of(axis.second[v], "grid." + key + "." + std::to_string(v)));
        }
        grid.axes.emplace_back(key, values);
        grid.axis_locs.push_back(reader.loc_of(axis.first, "grid." + key));
        grid.axis_value_locs.push_back(value_locs);
        // Swept and sampled at once, the sample would silently win on every point.
        for (size_t i = 0; i < grid.search.space.size(); ++i)
          if (grid.search.space[i].first == key)
            reader.error_at(grid.search.space_locs[i], "search.space." + key,
                            "is also under grid: (line " +
                                std::to_string(reader.loc_of(axis.first, "grid." + key).line) +
                                "); a key is either swept (grid) or sampled (search.space): remove one");
      }
    }
  }
  if (top.has("seeds")) {
    const YAML::Node seeds = top.node("seeds");
    if (!seeds.IsSequence() || seeds.size() == 0) {
      reader.error(seeds, "seeds", "must be a non-empty list of integers, e.g. [1, 2, 3]");
    } else {
      for (size_t i = 0; i < seeds.size(); ++i)
        if (auto s = reader.to_int(seeds[i], "seeds." + std::to_string(i), Range::NonNegative))
          grid.seeds.push_back(*s);
    }
  }
  top.get("name", grid.name_template);
  for (size_t start = grid.name_template.find('{'); start != std::string::npos;
       start = grid.name_template.find('{', start + 1)) {
    const size_t end = grid.name_template.find('}', start);
    const std::string field = grid.name_template.substr(start + 1, end == std::string::npos ? end : end - start - 1);
    bool known = field == "seed" || field == "index";
    for (const auto& [key, values] : grid.axes) known = known || key == field;
    for (const auto& [key, d] : grid.search.space) known = known || key == field;
    if (end == std::string::npos || !known)
      reader.error(top.node("name"), "name",
                   "'{" + field + "}' is not a grid key; use {seed}, {index} or one of the keys under grid");
  }
  // A typo can multiply a grid into millions of points; refuse before expanding.
  constexpr double kMaxPoints = 10000;  // each point is a training run: more is a typo
  double points = grid.seeds.empty() ? 1.0 : static_cast<double>(grid.seeds.size());
  std::string factors = grid.seeds.empty() ? "" : std::to_string(grid.seeds.size()) + " seeds";
  if (grid.sampled() && grid.search.samples > 0) {
    points *= static_cast<double>(grid.search.samples);
    factors += (factors.empty() ? "" : " x ") + std::to_string(grid.search.samples) + " samples";
  }
  for (const auto& [key, values] : grid.axes) {
    points *= static_cast<double>(values.size());
    factors += (factors.empty() ? "" : " x ") + std::to_string(values.size()) + " " + key;
  }
  if (points > kMaxPoints)
    reader.error(top.has("grid") ? top.node("grid") : root, "grid",
                 "the grid has " +
                     (points < 1e15 ? std::to_string(static_cast<int64_t>(points)) : std::string("over 1e15")) +
                     " points (" + factors + "); at most 10000 — split it into several grids");
  if (!reader.diagnostics().empty()) throw ConfigError(reader.diagnostics());
  return grid;
}

std::vector<GridPoint> expand_grid(const GridSpec& grid, const std::string& base_name, int64_t base_seed) {
  std::vector<GridPoint> points;
  const std::vector<int64_t> seeds = grid.seeds.empty() ? std::vector<int64_t>{base_seed} : grid.seeds;
  size_t combos = 1;
  for (const auto& axis : grid.axes) combos *= axis.second.size();
  const std::vector<std::vector<double>> draws =
      grid.sampled() ? search_draws(grid.search) : std::vector<std::vector<double>>(1);
  for (size_t sample = 0; sample < draws.size(); ++sample) {  // samples outermost
    const std::vector<double>& draw = draws[sample];
    for (size_t c = 0; c < combos; ++c) {
      for (int64_t seed : seeds) {
        GridPoint p;
        p.index = static_cast<int64_t>(points.size());
        std::string name = grid.name_template;
        size_t rest = c;
        std::vector<std::pair<std::string, std::string>> sampled;
        for (size_t d = 0; d < draw.size(); ++d) {
          const auto& [key, dist] = grid.search.space[d];
          const std::string value = dist.value_at(draw[d]);
          sampled.emplace_back(key, value);
          for (size_t at = 0; (at = name.find("{" + key + "}", at)) != std::string::npos; at += value.size())
            name.replace(at, key.size() + 2, value);
        }
        std::vector<std::pair<std::string, std::string>> parts(grid.axes.size());
        for (size_t a = grid.axes.size(); a-- > 0;) {  // last axis varies fastest
          const auto& [key, values] = grid.axes[a];
          const std::string& value = values[rest % values.size()];
          rest /= values.size();
          parts[a] = {key, value};
          // Search on after the inserted value: a value may itself contain "{key}".
          for (size_t at = 0; (at = name.find("{" + key + "}", at)) != std::string::npos; at += value.size())
            name.replace(at, key.size() + 2, value);
        }
        parts.insert(parts.begin(), sampled.begin(), sampled.end());
        for (const auto& [key, value] : parts) p.sets.push_back(key + "=" + value);
        p.key.values = parts;
        p.key.seed = seed;
        // Two draws may give the same values (a categorical key): the sample number keeps keys apart.
        if (grid.sampled()) p.key.sample = static_cast<int64_t>(sample);
        p.sets.push_back("train.seed=" + std::to_string(seed));
        const std::string seed_text = std::to_string(seed), index_text = std::to_string(p.index);
        for (size_t at = 0; (at = name.find("{seed}", at)) != std::string::npos; at += seed_text.size())
          name.replace(at, 6, seed_text);
        for (size_t at = 0; (at = name.find("{index}", at)) != std::string::npos; at += index_text.size())
          name.replace(at, 7, index_text);
        p.name = name.empty() ? base_name + "-p" + std::to_string(p.index) : name;
        p.sets.push_back("name=" + p.name);
        points.push_back(std::move(p));
      }
    }
  }
  return points;
}

void check_grid_keys(const GridSpec& grid, const ExperimentSpec& base, const std::vector<GridPoint>& drawn) {
  std::vector<Diagnostic> problems;
  const nlohmann::json config = experiment_json(base);
  // --set addresses the file as written (model.layers.N is the Nth written layer)
  // or a key whose default the resolved config shows (train.label_smoothing).
  YAML::Node written;
  try {
    // keys a parent wrote count too
    written = resolve_extends(read_text_file(grid.base).value_or(""), grid.base).root;
  } catch (const std::exception&) {  // load_experiment already read it
  }
  auto written_has = [&](const std::string& key) {
    YAML::Node node;
    node.reset(written);            // reset rebinds; operator= would write into the tree
    std::string prev, before_prev;  // a shorthand use is a list item: before_prev is its index
    for (size_t start = 0; start <= key.size();) {
      const size_t dot = std::min(key.find('.', start), key.size());
      const std::string part = key.substr(start, dot - start);
      if (node.IsMap() && node[part].IsDefined()) {
        node.reset(node[part]);
      } else if (node.IsSequence() && is_index(part) && std::stoul(part) < node.size()) {
        node.reset(node[std::stoul(part)]);
      } else if (const std::string option =
                     node.IsMap() || prev.empty() || !is_index(before_prev) ? "" : shorthand_option(written, prev);
                 !option.empty()) {
        // A shorthand use (`- maxpool: 2`) has its map form's options: the value is the shorthand
        // option's; another option is checked, at its grid line, when the points are.
        if (part != option) return true;
      } else {
        return false;
      }
      before_prev = prev, prev = part;
      start = dot + 1;
    }
    return true;
  };
  // Every dotted path of the resolved config, for a did-you-mean.
  std::vector<std::string> paths;
  std::function<void(const nlohmann::json&, const std::string&)> collect = [&](const nlohmann::json& j,
                                                                               const std::string& path) {
    if (!path.empty()) paths.push_back(path);
    if (j.is_object())
      for (const auto& item : j.items()) collect(item.value(), path.empty() ? item.key() : path + "." + item.key());
    else if (j.is_array())
      for (size_t k = 0; k < j.size(); ++k) collect(j[k], path + "." + std::to_string(k));
  };
  collect(config, "");
  auto did_you_mean = [&](const std::string& key) {
    const std::string near = runner::did_you_mean(key, paths);
    return near.empty() ? std::string() : "; did you mean " + near + "?";
  };
  for (size_t i = 0; i < grid.search.space.size(); ++i) {
    const std::string& key = grid.search.space[i].first;
    if (json_at(config, key).is_null() && !written_has(key))
      problems.push_back({grid.search.space_locs[i], "search.space." + key,
                          "the experiment " + grid.base + " has no key " + key +
                              " (a dotted path into its resolved config, e.g. train.optimizer.lr or "
                              "model.layers.0.conv.out)" +
                              did_you_mean(key)});
  }
  const HalvingSpec& h = grid.halving;
  if (h.enabled && problems.empty() && !drawn.empty()) {
    // As the points see it: a grid axis may set data.validation or the budget.
    ExperimentSpec first = base;
    try {
      first = load_experiment(grid.base, drawn.front().sets);
    } catch (const std::exception&) {  // an invalid first point is rejected later, with its reason
    }
    if (h.metric == "val_acc" && first.data.validation <= 0)
      problems.push_back({h.metric_loc, "halving.metric",
                          "val_acc is recorded only with data.validation (hold out images in " + grid.base +
                              "); or say metric: test_acc, which compare and the report then label as chosen on test"});
    if (h.max_epochs > first.budget.max_epochs)
      problems.push_back({h.max_epochs_loc, "halving.max_epochs",
                          std::to_string(h.max_epochs) + " epochs is over the experiment's budget.max_epochs (" +
                              std::to_string(first.budget.max_epochs) + ")"});
  }
  if (!problems.empty()) throw ConfigError(problems);
}

Diagnostic locate_in_grid(const GridSpec& grid, const Diagnostic& problem) {
  const std::string prefix = "--set ";
  if (problem.loc.file.rfind(prefix, 0) != 0) return problem;
  const std::string arg = problem.loc.file.substr(prefix.size());
  const size_t eq = arg.find('=');
  if (eq == std::string::npos) return problem;
  const std::string key = arg.substr(0, eq), value = arg.substr(eq + 1);
  for (size_t a = 0; a < grid.axes.size() && a < grid.axis_value_locs.size(); ++a) {
    if (grid.axes[a].first != key) continue;
    const auto& values = grid.axes[a].second;
    // A key the experiment does not have is the key's fault, not the value's.
    if (problem.key == key && problem.message.rfind("unknown key", 0) == 0)
      return Diagnostic{grid.axis_locs[a], "grid." + key, problem.message};
    for (size_t v = 0; v < values.size(); ++v)
      if (values[v] == value)
        return Diagnostic{
            grid.axis_value_locs[a][v], "grid." + problem.key,
            problem.message + (problem.key == key ? "" : " (from the value " + value + " of " + key + ")")};
  }
  return problem;
}

}  // namespace runner
