// Checked reading of YAML nodes for the config stage: typed values with ranges,
// `${VAR}` expansion, unknown-key detection with "did you mean", and locations
// that point at the file position or at the `--set` argument a value came from.
// Problems are collected, never thrown one at a time, so a file's errors all
// surface together.
#pragma once
#include <yaml-cpp/yaml.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "layers/layer_def.h"
#include "runner/base/errors.h"

namespace runner {

/// Nearest candidate within a small edit distance, or "".
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);
std::string join(const std::vector<std::string>& items, const std::string& sep = ", ");

/// A whole file's bytes; nullopt when it cannot be opened.
std::optional<std::string> read_text_file(const std::string& path);

/// Parses YAML text as the spec reads it, not as loosely as yaml-cpp: a key
/// given twice in one map is an error naming both lines; merge keys
/// (`<<: *base`, `<<: [*a, *b]`) are resolved, the map's own keys winning over
/// merged ones and earlier merged maps over later ones. Anchors and aliases,
/// a UTF-8 byte-order mark and CRLF line ends work. Throws ConfigError with
/// `label`:line:col for invalid YAML and for every duplicate key.
YAML::Node load_yaml(const std::string& text, const std::string& label);

/// An experiment's YAML with `extends: PATH` resolved (PATH relative to the
/// file; chains allowed): the parent's maps merged key by key with the child's,
/// lists and scalars replaced. `origins` says which file each inherited value
/// was written in; `chain` lists the files, the child first.
struct ResolvedYaml {
  YAML::Node root;
  std::map<std::string, std::string> origins;
  std::vector<std::string> chain;
};
/// Throws ConfigError (naming the chain) for a cycle, a missing parent or a
/// parent that is not a map.
ResolvedYaml resolve_extends(const std::string& text, const std::string& label);

/// Expands ${VAR} and ${VAR:-default}; sets `error` for an unset VAR without default.
std::string expand_env(const std::string& text, std::string& error);

class Reader {
 public:
  /// `origins`: dotted paths whose values were written in another file (a parent
  /// an experiment extends) → that file; the longest matching path wins.
  Reader(std::string file, std::map<std::string, std::string> overrides,
         std::map<std::string, std::string> origins = {})
      : file_(std::move(file)), overrides_(std::move(overrides)), origins_(std::move(origins)) {}

  void error(const YAML::Node& node, const std::string& path, const std::string& message);
  void error_at(const SourceLoc& loc, const std::string& path, const std::string& message);
  SourceLoc loc_of(const YAML::Node& node, const std::string& path) const;
  const std::vector<Diagnostic>& diagnostics() const { return diags_; }
  size_t error_count() const { return diags_.size(); }

  /// The scalar text with ${VAR} expanded; nullopt (and an error) if not a scalar.
  std::optional<std::string> scalar(const YAML::Node& node, const std::string& path);
  std::optional<int64_t> to_int(const YAML::Node& node, const std::string& path, Range range);
  std::optional<double> to_double(const YAML::Node& node, const std::string& path, Range range);
  std::optional<bool> to_bool(const YAML::Node& node, const std::string& path);
  std::optional<std::string> to_choice(const YAML::Node& node, const std::string& path,
                                       const std::vector<std::string>& choices);

 private:
  bool range_ok(double value, Range range, const YAML::Node& node, const std::string& path);
  std::string file_;
  std::map<std::string, std::string> overrides_;  ///< dotted path -> the --set argument
  std::map<std::string, std::string> origins_;    ///< dotted path -> the file it was written in
  std::vector<Diagnostic> diags_;
};

/// A YAML map with a fixed set of allowed keys; unknown keys are reported on
/// construction. Getters fill the target only when the key is present and valid.
class MapView {
 public:
  MapView(Reader& reader, YAML::Node node, std::string path, std::vector<std::string> known);
  bool ok() const { return ok_; }
  bool has(const std::string& key) const;
  YAML::Node node(const std::string& key) const;
  YAML::Node self() const { return node_; }
  std::string path(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  /// Reports a missing required key at the map's own position.
  bool require(const std::string& key);

  void get(const std::string& key, int64_t& target, Range range = Range::Any);
  void get(const std::string& key, double& target, Range range = Range::Any);
  void get(const std::string& key, bool& target);
  void get(const std::string& key, std::string& target);
  void get_choice(const std::string& key, std::string& target, const std::vector<std::string>& choices);

 private:
  Reader& reader_;
  YAML::Node node_;
  std::string path_;
  bool ok_ = true;
};

}  // namespace runner
