// Checked reading of YAML nodes for the config stage: typed values with ranges,
// `${VAR}` expansion, unknown-key detection with "did you mean", and locations
// that point at the file position or at the `--set` argument a value came from.
// Problems are collected, never thrown one at a time, so a file's errors all
// surface together.
#pragma once
#include <yaml-cpp/yaml.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "layers/layer_def.h"
#include "runner/base/errors.h"
#include "runner/base/text.h"

namespace runner {

/// The option a shorthand use of `type` sets (`- maxpool: 2`, `- residual: [...]`, `- stage: 32`):
/// the layer's shorthand, or a block's only parameter (or only one without a default); empty if none.
/// `root`: the experiment, whose model.blocks define the blocks.
std::string shorthand_option(const YAML::Node& root, const std::string& type);

/// Whether a path segment is a list index ("0", "12"; at most 8 digits).
inline bool is_index(const std::string& s) {
  return !s.empty() && s.size() < 9 && s.find_first_not_of("0123456789") == std::string::npos;
}

/// Nearest candidate within a small edit distance, or "".
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);

/// What a config file may be: its size, and how deep its lists and maps nest.
inline constexpr size_t kMaxConfigBytes = 1 << 20;
inline constexpr int kMaxConfigDepth = 64;

/// A whole config file's bytes; nullopt, with the reason in `why`, when it is not
/// a regular file (a directory, device or FIFO is refused before it is read), is
/// larger than kMaxConfigBytes, or cannot be read.
std::optional<std::string> read_text_file(const std::string& path, std::string* why = nullptr);

/// Parses YAML text as the spec reads it, not as loosely as yaml-cpp: a key
/// given twice in one map is an error naming both lines; merge keys
/// (`<<: *base`, `<<: [*a, *b]`) are resolved, the map's own keys winning over
/// merged ones and earlier merged maps over later ones. Anchors and aliases,
/// a UTF-8 byte-order mark and CRLF line ends work. Throws ConfigError with
/// `label`:line:col for invalid YAML, for every duplicate key, for a byte that is
/// not UTF-8, for a second document ('---') and for nesting deeper than
/// kMaxConfigDepth.
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

/// One use of a `model.blocks` entry while its layers are read: `$name` scalars in
/// the definition stand for the use's arguments. Layers inside get paths below
/// `use_path + ".layers"`; `def_path` is where the definition is written.
struct BlockFrame {
  std::string block;     ///< its name
  std::string use_path;  ///< "model.layers.2.stage"
  std::string def_path;  ///< "model.blocks.stage"
  SourceLoc use_loc, def_loc;
  struct Arg {
    YAML::Node node;   ///< the value as written (at the use, or the definition's default)
    std::string path;  ///< its dotted path, for locations
  };
  std::map<std::string, Arg> args;
  std::vector<std::string> params;  ///< the names in the definition's order, for messages
};

/// `$name`: a whole scalar naming a block parameter.
bool is_param_ref(const std::string& text);

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

  /// Block uses, innermost last: a scalar read while one is entered resolves `$name`.
  void enter_block(BlockFrame frame) { frames_.push_back(std::move(frame)); }
  void leave_block() { frames_.pop_back(); }
  /// "in block 'stage' (line 12), used at model.layers.2 (line 40)" for a path inside
  /// an entered block's layers; "" elsewhere.
  std::string block_context(const std::string& path) const;
  /// A value as read: a `$name` inside a block is replaced by the argument node (its
  /// own path, and a note naming where the block uses it).
  struct Value {
    YAML::Node node;
    std::string path, note;
  };
  /// nullopt (and an error) for a `$name` that is not a parameter of the block.
  std::optional<Value> resolve(const YAML::Node& node, const std::string& path);

  size_t error_count() const { return diags_.size(); }
  /// Where shorthand uses that --set expanded into maps were written (the maps have no mark).
  void set_expanded(std::map<std::string, YAML::Mark> marks) { expanded_ = std::move(marks); }

  /// The scalar text with ${VAR} expanded; nullopt (and an error) if not a scalar.
  std::optional<std::string> scalar(const YAML::Node& node, const std::string& path);
  std::optional<int64_t> to_int(const YAML::Node& node, const std::string& path, Range range);
  std::optional<double> to_double(const YAML::Node& node, const std::string& path, Range range);
  std::optional<bool> to_bool(const YAML::Node& node, const std::string& path);
  std::optional<std::string> to_choice(const YAML::Node& node, const std::string& path,
                                       const std::vector<std::string>& choices);

 private:
  std::optional<std::string> text_of(const Value& v);
  void fail(const Value& v, const std::string& message) { report(loc_of(v.node, v.path), v.path, message, v.note); }
  /// Adds a diagnostic; inside a block, one already given at the same place with the
  /// same message (the block's next use) is not repeated.
  void report(const SourceLoc& loc, const std::string& path, const std::string& message, const std::string& note);
  bool range_ok(double value, Range range, const Value& v);
  /// The frame whose layers `path` is in (longest use path), or null.
  const BlockFrame* frame_of(const std::string& path) const;
  std::string where(const SourceLoc& loc) const;
  std::string file_;
  std::map<std::string, std::string> overrides_;  ///< dotted path -> the --set argument
  std::map<std::string, std::string> origins_;    ///< dotted path -> the file it was written in
  std::vector<Diagnostic> diags_;
  std::vector<BlockFrame> frames_;
  std::map<std::string, YAML::Mark> expanded_;  ///< dotted path -> where its shorthand was written
  std::set<std::string> reported_;              ///< place + message of problems found inside blocks
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
