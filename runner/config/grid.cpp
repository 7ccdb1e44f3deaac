#include "runner/config/grid.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <regex>

#include "runner/base/errors.h"
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
}  // namespace

GridSpec load_grid(const std::string& path) {
  GridSpec grid;
  grid.file = path;
  grid.sweep = fs::path(path).stem().string();
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw ConfigError({Diagnostic{SourceLoc{path, 0, 0}, "", "cannot open the grid file (no such file or not readable)"}});
  } catch (const YAML::ParserException& e) {
    throw ConfigError({Diagnostic{SourceLoc{path, e.mark.line + 1, e.mark.column + 1}, "", "not valid YAML: " + e.msg}});
  }
  if (!root.IsMap())
    throw ConfigError({Diagnostic{SourceLoc{path, 1, 1}, "", "a grid file is a map with base, grid, seeds, name"}});
  Reader reader(path, {});
  MapView top(reader, root, "", {"base", "grid", "seeds", "name", "sweep"});
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
  if (top.require("grid")) {
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
        for (const auto& v : axis.second) values.push_back(flow_text(v));
        grid.axes.emplace_back(key, values);
      }
    }
  }
  if (top.has("seeds")) {
    const YAML::Node seeds = top.node("seeds");
    if (!seeds.IsSequence() || seeds.size() == 0) {
      reader.error(seeds, "seeds", "must be a non-empty list of integers, e.g. [1, 2, 3]");
    } else {
      for (size_t i = 0; i < seeds.size(); ++i)
        if (auto s = reader.to_int(seeds[i], "seeds." + std::to_string(i), Range::NonNegative)) grid.seeds.push_back(*s);
    }
  }
  top.get("name", grid.name_template);
  for (size_t start = grid.name_template.find('{'); start != std::string::npos;
       start = grid.name_template.find('{', start + 1)) {
    const size_t end = grid.name_template.find('}', start);
    const std::string field = grid.name_template.substr(start + 1, end == std::string::npos ? end : end - start - 1);
    bool known = field == "seed" || field == "index";
    for (const auto& [key, values] : grid.axes) known = known || key == field;
    if (end == std::string::npos || !known)
      reader.error(top.node("name"), "name",
                   "'{" + field + "}' is not a grid key; use {seed}, {index} or one of the keys under grid");
  }
  // A typo can multiply a grid into millions of points; refuse before expanding.
  constexpr double kMaxPoints = 10000;  // each point is a training run: more is a typo
  double points = grid.seeds.empty() ? 1.0 : static_cast<double>(grid.seeds.size());
  std::string factors = grid.seeds.empty() ? "" : std::to_string(grid.seeds.size()) + " seeds";
  for (const auto& [key, values] : grid.axes) {
    points *= static_cast<double>(values.size());
    factors += (factors.empty() ? "" : " x ") + std::to_string(values.size()) + " " + key;
  }
  if (points > kMaxPoints)
    reader.error(top.has("grid") ? top.node("grid") : root, "grid",
                 "the grid has " + (points < 1e15 ? std::to_string(static_cast<int64_t>(points)) : std::string("over 1e15")) +
                     " points (" + factors + "); at most 10000 — split it into several grids");
  if (!reader.diagnostics().empty()) throw ConfigError(reader.diagnostics());
  return grid;
}

std::vector<GridPoint> expand_grid(const GridSpec& grid, const std::string& base_name, int64_t base_seed) {
  std::vector<GridPoint> points;
  const std::vector<int64_t> seeds = grid.seeds.empty() ? std::vector<int64_t>{base_seed} : grid.seeds;
  size_t combos = 1;
  for (const auto& axis : grid.axes) combos *= axis.second.size();
  for (size_t c = 0; c < combos; ++c) {
    for (int64_t seed : seeds) {
      GridPoint p;
      p.index = static_cast<int64_t>(points.size());
      std::string name = grid.name_template;
      size_t rest = c;
      std::vector<std::string> parts(grid.axes.size());
      for (size_t a = grid.axes.size(); a-- > 0;) {  // last axis varies fastest
        const auto& [key, values] = grid.axes[a];
        const std::string& value = values[rest % values.size()];
        rest /= values.size();
        parts[a] = key + "=" + value;
        // Search on after the inserted value: a value may itself contain "{key}".
        for (size_t at = 0; (at = name.find("{" + key + "}", at)) != std::string::npos; at += value.size())
          name.replace(at, key.size() + 2, value);
      }
      p.sets = parts;
      p.key = join(parts, " ") + " seed=" + std::to_string(seed);
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
  return points;
}

}  // namespace runner
