#include "runner/config/yaml_reader.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <yaml-cpp/eventhandler.h>

namespace runner {

namespace {
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string trim(const std::string& s) {
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(" \t") - first + 1);
}
}  // namespace

namespace {

/// The tag an empty value gets, followed by its key's "line:col" (see strict_walk).
const std::string kEmptyValueTag = "!runner-empty-value-at:";

/// Checks every map under `node` for keys given twice and resolves its merge
/// keys, children first (a merged map may merge others). An aliased node is
/// visited once (`seen`: its position in the text).
void strict_walk(YAML::Node node, const std::string& path, const std::string& label, std::vector<Diagnostic>& diags,
                 std::set<size_t>& seen) {
  if (!node.IsMap() && !node.IsSequence()) return;
  const YAML::Mark mark = node.Mark();
  if (mark.pos >= 0 && !seen.insert(static_cast<size_t>(mark.pos)).second) return;
  auto at = [&](const YAML::Mark& m) { return SourceLoc{label, m.line + 1, m.column + 1}; };
  if (node.IsSequence()) {
    for (size_t i = 0; i < node.size(); ++i)
      strict_walk(node[i], path + (path.empty() ? "" : ".") + std::to_string(i), label, diags, seen);
    return;
  }
  std::map<std::string, YAML::Mark> keys;
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (!it->first.IsScalar()) {
      diags.push_back({at(it->first.Mark()), path,
                       std::string("a key is a name, not a ") + (it->first.IsSequence() ? "list" : "map") +
                           " (write it without [ ] or { }, or quote it)"});
      continue;
    }
    const std::string key = it->first.Scalar(), key_path = path.empty() ? key : path + "." + key;
    const auto [first, fresh] = keys.emplace(key, it->first.Mark());
    // An empty value (`epochs:` and nothing) is a null whose mark is the next token,
    // lines later or at the end of the file: it remembers its key's place instead.
    if (it->second.IsNull() && it->second.Mark().line > it->first.Mark().line)
      it->second.SetTag(kEmptyValueTag + std::to_string(it->first.Mark().line + 1) + ":" +
                        std::to_string(it->first.Mark().column + 1));
    if (!fresh)
      diags.push_back({at(it->first.Mark()), key_path,
                       "given twice in one map (first at line " + std::to_string(first->second.line + 1) + ", column " +
                           std::to_string(first->second.column + 1) + "); YAML keys are unique: keep one"});
    strict_walk(it->second, key_path, label, diags, seen);
  }
  if (!keys.count("<<")) return;
  const YAML::Node merge = node["<<"];
  std::vector<YAML::Node> sources;
  if (merge.IsMap()) sources.push_back(merge);
  if (merge.IsSequence())
    for (const auto& item : merge) sources.push_back(item);
  if (sources.empty() || !std::all_of(sources.begin(), sources.end(), [](const YAML::Node& n) { return n.IsMap(); })) {
    diags.push_back({at(merge.Mark()), path.empty() ? "<<" : path + ".<<",
                     "a merge key takes a map (an alias such as *base) or a list of them"});
    return;
  }
  node.remove("<<");
  const YAML::Node& own = node;
  std::set<std::string> present;
  for (auto it = own.begin(); it != own.end(); ++it)
    if (it->first.IsScalar()) present.insert(it->first.Scalar());
  // The merged values are the anchor's own nodes (so their marks point at where they were
  // written); --set replaces an entry rather than writing into its node (apply_override).
  for (const auto& source : sources)
    for (auto it = source.begin(); it != source.end(); ++it)
      if (it->first.IsScalar() && present.insert(it->first.Scalar()).second) node.force_insert(it->first, it->second);
}

}  // namespace

std::optional<std::string> read_text_file(const std::string& path, std::string* why) {
  namespace fs = std::filesystem;
  auto refuse = [&](const std::string& reason) -> std::optional<std::string> {
    if (why != nullptr) *why = reason;
    return std::nullopt;
  };
  // Checked before opening: a directory reads as nothing, and /dev/zero or a FIFO
  // would be read until memory runs out, or block forever.
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (ec || status.type() == fs::file_type::not_found) return refuse("no such file");
  if (status.type() == fs::file_type::directory) return refuse("is a directory, not a file");
  if (status.type() != fs::file_type::regular) return refuse("is not a regular file (a device, FIFO or socket)");
  const auto size = fs::file_size(path, ec);
  if (!ec && size > kMaxConfigBytes)
    return refuse("is " + std::to_string(size) + " bytes; a config file may have at most " +
                  std::to_string(kMaxConfigBytes) + " (1 MiB)");
  std::ifstream in(path, std::ios::binary);
  if (!in) return refuse("not readable");
  std::string text;
  text.resize(kMaxConfigBytes + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxConfigBytes) return refuse("is larger than a config file may be (1 MiB)");
  return text;
}

namespace {

/// Where the first byte that is not well-formed UTF-8 (RFC 3629: no overlong
/// forms, no surrogates, at most U+10FFFF) starts; npos when all of it is.
size_t first_invalid_utf8(const std::string& text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
    if (c < 0x80)
      len = 1;
    else if (c >= 0xC2 && c <= 0xDF)
      len = 2;
    else if (c == 0xE0)
      len = 3, lo = 0xA0;
    else if (c >= 0xE1 && c <= 0xEC)
      len = 3;
    else if (c == 0xED)
      len = 3, hi = 0x9F;
    else if (c >= 0xEE && c <= 0xEF)
      len = 3;
    else if (c == 0xF0)
      len = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3)
      len = 4;
    else if (c == 0xF4)
      len = 4, hi = 0x8F;
    else
      return i;
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      const unsigned char b = s[i + k];
      if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return i;
    }
    i += len;
  }
  return std::string::npos;
}

/// 1-based line and column (in characters) of byte `offset`.
SourceLoc location_of(const std::string& text, size_t offset, const std::string& label) {
  int line = 1, col = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n')
      ++line, col = 1;
    else if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80)
      ++col;  // not a continuation byte
  }
  return SourceLoc{label, line, col};
}

/// Byte offset where 0-based `line` of `text` begins (text.size() past the end).
size_t offset_of_line(const std::string& text, int line) {
  size_t offset = 0;
  for (int l = 0; l < line && offset < text.size(); ++l) offset = std::min(text.find('\n', offset), text.size()) + 1;
  return std::min(offset, text.size());
}

/// Records where each document starts, for `documents_in` below.
class DocumentStarts : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> starts;
  void OnDocumentStart(const YAML::Mark& mark) override { starts.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

/// Where the first two documents of `text` start (at most two are read). yaml-cpp 0.7
/// reads a token no rule consumes (a stray ',') as an empty document that leaves the
/// token in place, so YAML::LoadAll never returns on it (yaml-cpp issue 1040; the config
/// fuzzer found four such inputs); reading at most two documents ends on every input.
std::vector<YAML::Mark> documents_in(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentStarts starts;
  for (int i = 0; i < 2 && parser.HandleNextDocument(starts); ++i) {
  }
  return starts.starts;
}

/// Deepest nesting of lists and maps under `node`, stopping once past `limit`.
int nesting_depth(const YAML::Node& node, int limit) {
  if (!node.IsMap() && !node.IsSequence()) return 0;
  int deepest = 0;
  for (auto it = node.begin(); it != node.end() && deepest <= limit; ++it)
    deepest = std::max(deepest, nesting_depth(node.IsMap() ? it->second : *it, limit));
  return deepest + 1;
}

}  // namespace

YAML::Node load_yaml(const std::string& text, const std::string& label) {
  if (const size_t bad = first_invalid_utf8(text); bad != std::string::npos) {
    char byte[8];
    std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned char>(text[bad]));
    throw ConfigError({Diagnostic{location_of(text, bad, label), "",
                                  std::string("byte ") + byte +
                                      " is not UTF-8; config files are UTF-8 text (re-save the file as UTF-8, "
                                      "e.g. iconv -f latin1 -t utf-8)"}});
  }
  // Bracket nesting is counted before parsing: yaml-cpp recurses once per level.
  {
    int depth = 0;
    bool in_single = false, in_double = false, in_comment = false;
    for (size_t i = 0; i < text.size(); ++i) {
      const char c = text[i];
      if (c == '\n') in_comment = false;
      if (in_comment) continue;
      if (in_double) {
        if (c == '\\')
          ++i;
        else if (c == '"')
          in_double = false;
        continue;
      }
      if (in_single) {
        if (c == '\'') in_single = false;
        continue;
      }
      if (c == '#' && (i == 0 || text[i - 1] == ' ' || text[i - 1] == '\t' || text[i - 1] == '\n'))
        in_comment = true;
      else if (c == '"')
        in_double = true;
      else if (c == '\'' && (i == 0 || std::string(" \t\n[{,:").find(text[i - 1]) != std::string::npos))
        in_single = true;  // a quote inside a word (it's) starts nothing
      else if (c == '[' || c == '{') {
        if (++depth > kMaxConfigDepth)
          throw ConfigError(
              {Diagnostic{location_of(text, i, label), "",
                          "lists and maps nest more than " + std::to_string(kMaxConfigDepth) +
                              " levels deep here; the DSL allows at most " + std::to_string(kMaxConfigDepth)}});
      } else if ((c == ']' || c == '}') && depth > 0) {
        --depth;
      }
    }
  }
  YAML::Node root;
  try {
    const std::vector<YAML::Mark> starts = documents_in(text);
    if (starts.size() > 1) {
      const YAML::Mark& at = starts[1];
      // of the second document's first token
      const size_t offset = std::min(offset_of_line(text, at.line) + static_cast<size_t>(at.column), text.size());
      const SourceLoc loc{label, at.line + 1, at.column + 1};
      if (text.compare(offset, 3, "---") == 0)
        throw ConfigError({Diagnostic{loc, "",
                                      "a second YAML document begins here ('---'); a config file is one document: "
                                      "remove the '---' and what follows, or split it into two files"}});
      if (offset < text.size() && text[offset] == ',')
        throw ConfigError(
            {Diagnostic{loc, "", "',' separates items only inside [ ] or { }; quote the text if it is a value"}});
      throw ConfigError({Diagnostic{loc, "",
                                    "a second YAML document begins here (after '...' or something the first "
                                    "cannot hold); a config file is one document"}});
    }
    root = starts.empty() ? YAML::Node() : YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    // A tab in a line's indentation is the usual cause of yaml-cpp's "illegal map value" there.
    const size_t start = offset_of_line(text, e.mark.line);
    const size_t indent_end = std::min(text.find_first_not_of(" \t", start), text.size());
    if (e.mark.line >= 0 && text.substr(start, indent_end - start).find('\t') != std::string::npos)
      throw ConfigError({Diagnostic{location_of(text, text.find('\t', start), label), "",
                                    "a tab indents this line; YAML indents with spaces only"}});
    std::string why = e.msg;
    if (why.rfind("the referenced anchor is not defined", 0) == 0) {
      // Our words, not yaml-cpp's: 0.8 (Debian 13) appends the name, 0.7 (Debian 12) does not.
      const size_t at = std::min(start + static_cast<size_t>(std::max(e.mark.column, 0)), text.size());
      const size_t end = std::min(text.find_first_of(" \t\r\n,]}", at), text.size());
      const std::string alias = text.substr(at, end - at);
      why = "'" + alias + "' refers to no anchor (define it earlier in the file: &" +
            (alias.empty() ? alias : alias.substr(1)) + ")";
    }
    throw ConfigError({Diagnostic{SourceLoc{label, e.mark.line + 1, e.mark.column + 1}, "", "not valid YAML: " + why}});
  }
  if (nesting_depth(root, kMaxConfigDepth) > kMaxConfigDepth)
    throw ConfigError({Diagnostic{SourceLoc{label, 1, 1}, "",
                                  "lists and maps nest more than " + std::to_string(kMaxConfigDepth) +
                                      " levels deep; the DSL allows at most " + std::to_string(kMaxConfigDepth)}});
  std::vector<Diagnostic> diags;
  std::set<size_t> seen;
  strict_walk(root, "", label, diags, seen);
  if (!diags.empty()) throw ConfigError(diags);
  return root;
}

namespace {

/// Puts `base` under `over`, in place: keys only `base` has are added, maps both have
/// merge the same way, anything else stays `over`'s (lists and scalars replace). `over`'s
/// nodes stay (with their marks); paths whose values come from `base` get `base_file`, or
/// the deeper origin `base` already had.
void merge_under(YAML::Node over, const YAML::Node& base, const std::string& path, const std::string& base_file,
                 const std::map<std::string, std::string>& base_origins, std::map<std::string, std::string>& origins) {
  for (auto it = base.begin(); it != base.end(); ++it) {
    const std::string key = it->first.Scalar(), p = path.empty() ? key : path + "." + key;
    const YAML::Node& view = over;
    const YAML::Node mine = view[key];
    if (!mine.IsDefined()) {
      over.force_insert(it->first, it->second);
      // Written in base_file, unless base itself inherited it (at p, above p or below it).
      std::string file = base_file;
      size_t longest = 0;
      for (const auto& [k, f] : base_origins) {
        if ((p == k || p.rfind(k + ".", 0) == 0) && k.size() >= longest) file = f, longest = k.size();
        if (k.rfind(p + ".", 0) == 0) origins[k] = f;
      }
      origins[p] = file;
    } else if (mine.IsMap() && it->second.IsMap()) {
      merge_under(mine, it->second, p, base_file, base_origins, origins);
    }
  }
}

std::string chain_text(const std::vector<std::string>& chain, const std::string& last) {
  std::string out;
  for (const auto& file : chain) out += file + " → ";
  return out + last;
}

ResolvedYaml resolve_chain(const std::string& text, const std::string& label, std::vector<std::string> chain) {
  namespace fs = std::filesystem;
  ResolvedYaml r;
  r.root = load_yaml(text, label);
  chain.push_back(label);
  r.chain = {label};
  const YAML::Node& top = r.root;
  if (!top.IsMap() || !top["extends"].IsDefined()) return r;
  const YAML::Node ext = top["extends"];
  SourceLoc at{label, ext.Mark().line + 1, ext.Mark().column + 1};
  if (ext.IsNull() && ext.Tag().rfind(kEmptyValueTag, 0) == 0) {  // empty: at its key (see strict_walk)
    const std::string where = ext.Tag().substr(kEmptyValueTag.size());
    at.line = std::stoi(where), at.col = std::stoi(where.substr(where.find(':') + 1));
  }
  if (!ext.IsScalar() || ext.Scalar().empty())
    throw ConfigError({Diagnostic{at, "extends",
                                  std::string(ext.IsSequence() ? "takes one path, not a list: " : "takes ") +
                                      "the path of the experiment this one builds on, relative to " + label}});
  std::string env_error;  // ${VAR} and ${VAR:-default} expand here as in every other value
  const std::string written = expand_env(ext.Scalar(), env_error);
  if (!env_error.empty()) throw ConfigError({Diagnostic{at, "extends", env_error}});
  const fs::path parent_path = (fs::path(label).parent_path() / written).lexically_normal();
  const std::string parent = parent_path.string();
  for (const auto& file : chain)
    if (fs::path(file).lexically_normal() == parent_path)
      throw ConfigError({Diagnostic{at, "extends",
                                    "extends itself through " + chain_text(chain, parent) +
                                        "; a chain of extends must end in a file without one"}});
  std::string why;
  const std::optional<std::string> text_of_parent = read_text_file(parent, &why);
  if (!text_of_parent)
    throw ConfigError({Diagnostic{
        at, "extends", "cannot open " + parent + ": " + why + " (extends " + chain_text(chain, parent) + ")"}});
  const ResolvedYaml base = resolve_chain(*text_of_parent, parent, chain);
  if (!base.root.IsMap())
    throw ConfigError({Diagnostic{
        SourceLoc{parent, 1, 1}, "",
        "an experiment that others extend must be a map of keys (extends " + chain_text(chain, parent) + ")"}});
  // Into the child's own nodes, not a clone: a clone would lose where each value was written.
  r.root.remove("extends");
  merge_under(r.root, base.root, "", parent, base.origins, r.origins);
  r.chain.insert(r.chain.end(), base.chain.begin(), base.chain.end());
  return r;
}

}  // namespace

ResolvedYaml resolve_extends(const std::string& text, const std::string& label) {
  return resolve_chain(text, label, {});
}

std::string shorthand_option(const YAML::Node& root, const std::string& type) {
  if (const LayerDef* def = find_layer_def(type)) return def->shorthand;
  // A missing key of a const node is a "zombie" whose IsMap() throws: test IsDefined() first.
  auto child = [](const YAML::Node& node, const std::string& key) {
    return node.IsDefined() && node.IsMap() && node[key].IsDefined() ? node[key] : YAML::Node();
  };
  const YAML::Node params = child(child(child(child(root, "model"), "blocks"), type), "params");
  std::vector<std::string> all, required;
  if (params.IsSequence()) {
    for (const auto& p : params)
      if (p.IsScalar()) all.push_back(p.Scalar()), required.push_back(p.Scalar());
  } else if (params.IsMap()) {
    for (const auto& p : params) {
      all.push_back(p.first.Scalar());
      if (p.second.IsNull()) required.push_back(p.first.Scalar());
    }
  }
  return all.size() == 1 ? all[0] : required.size() == 1 ? required[0] : "";
}

std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, word.size() / 3) + 1;
  for (const auto& candidate : candidates) {
    const size_t d = edit_distance(word, candidate);
    // Replacing every character is not a near miss ('3' is not a typo of 'se').
    if (d < best_distance && d < word.size()) best_distance = d, best = candidate;
  }
  return best;
}

std::string expand_env(const std::string& text, std::string& error) {
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t start = text.find("${", pos);
    if (start == std::string::npos) break;
    const size_t end = text.find('}', start);
    if (end == std::string::npos) {
      error = "unterminated '${' in '" + text + "'";
      return text;
    }
    out += text.substr(pos, start - pos);
    const std::string inner = text.substr(start + 2, end - start - 2);
    const size_t dash = inner.find(":-");
    const std::string var = dash == std::string::npos ? inner : inner.substr(0, dash);
    const char* value = std::getenv(var.c_str());
    if (value != nullptr && *value != '\0') {
      out += value;
    } else if (dash != std::string::npos) {
      out += inner.substr(dash + 2);
    } else {
      error = "environment variable " + var + " is not set and has no default (write ${" + var + ":-default})";
      return text;
    }
    pos = end + 1;
  }
  return out + text.substr(pos);
}

bool is_param_ref(const std::string& text) {
  static const std::regex kRef("\\$[A-Za-z_][A-Za-z0-9_]*");
  return std::regex_match(text, kRef);
}

const BlockFrame* Reader::frame_of(const std::string& path) const {
  const BlockFrame* best = nullptr;
  for (const auto& f : frames_) {
    const std::string body = f.use_path + ".layers";
    if ((path == body || path.rfind(body + ".", 0) == 0) &&
        (best == nullptr || f.use_path.size() > best->use_path.size()))
      best = &f;
  }
  return best;
}

std::string Reader::where(const SourceLoc& loc) const {
  const std::string line = "line " + std::to_string(loc.line);
  return loc.file == file_ ? line : loc.file + " " + line;
}

std::string Reader::block_context(const std::string& path) const {
  const BlockFrame* f = frame_of(path);
  if (f == nullptr) return "";
  return "in block '" + f->block + "' (" + where(f->def_loc) + "), used at " +
         f->use_path.substr(0, f->use_path.rfind('.')) + " (" + where(f->use_loc) + ")";
}

SourceLoc Reader::loc_of(const YAML::Node& node, const std::string& path) const {
  // Inside a block's layers the value was written in the definition: find --set and
  // extends origins by the definition's path.
  std::string source = path;
  if (const BlockFrame* f = frame_of(path)) source = f->def_path + path.substr(f->use_path.size());
  // A value set (or nested under a key set) by --set points at that argument.
  for (const auto& [key, arg] : overrides_) {
    if (source == key || source.rfind(key + ".", 0) == 0) return SourceLoc{"--set " + arg, 0, 0};
  }
  // A value inherited through `extends` points into the file that wrote it.
  std::string file = file_;
  size_t longest = 0;
  for (const auto& [key, origin] : origins_)
    if ((source == key || source.rfind(key + ".", 0) == 0) && key.size() >= longest)
      file = origin, longest = key.size();
  if (node.IsDefined() && node.IsNull() && node.Tag().rfind(kEmptyValueTag, 0) == 0) {
    const std::string at = node.Tag().substr(kEmptyValueTag.size());
    return SourceLoc{file, std::stoi(at), std::stoi(at.substr(at.find(':') + 1))};
  }
  if (node.IsDefined() && node.Mark().line >= 0) return SourceLoc{file, node.Mark().line + 1, node.Mark().column + 1};
  if (const auto it = expanded_.find(path); it != expanded_.end())
    return SourceLoc{file, it->second.line + 1, it->second.column + 1};
  return SourceLoc{file, 0, 0};
}

void Reader::error(const YAML::Node& node, const std::string& path, const std::string& message) {
  error_at(loc_of(node, path), path, message);
}

void Reader::error_at(const SourceLoc& loc, const std::string& path, const std::string& message) {
  report(loc, path, message, "");
}

void Reader::report(const SourceLoc& loc, const std::string& path, const std::string& message,
                    const std::string& note) {
  if (!frames_.empty() && !reported_.insert(loc.str() + "\n" + message).second) return;
  const std::string context = block_context(path);
  diags_.push_back(Diagnostic{loc, path, message + note + (context.empty() ? "" : " (" + context + ")")});
}

std::optional<Reader::Value> Reader::resolve(const YAML::Node& node, const std::string& path) {
  Value v{node, path, ""};
  // An argument written inside an outer block's layers may itself be a $name of that block.
  for (size_t depth = frames_.size(); depth > 0 && v.node.IsScalar() && is_param_ref(v.node.Scalar()); --depth) {
    const BlockFrame& f = frames_[depth - 1];
    const std::string name = v.node.Scalar().substr(1);
    const auto arg = f.args.find(name);
    if (arg == f.args.end()) {
      const std::vector<std::string>& names = f.params;
      std::string message = "'$" + name + "' is not a parameter of block '" + f.block + "'";
      const std::string near = did_you_mean(name, names);
      message += near.empty() ? " (its parameters: " + (names.empty() ? std::string("none") : join(names)) + ")"
                              : " (did you mean '$" + near + "'?)";
      error(v.node, v.path, message);
      return std::nullopt;
    }
    if (v.note.empty())
      v.note = " (" + name + " of block '" + f.block + "', which uses it at " + where(loc_of(v.node, v.path)) + ")";
    v.node.reset(arg->second.node);
    v.path = arg->second.path;
  }
  return v;
}

std::optional<std::string> Reader::text_of(const Value& v) {
  if (v.node.IsNull()) {
    fail(v, "has no value");
    return std::nullopt;
  }
  if (!v.node.IsScalar()) {
    fail(v, std::string("must be a single value, not a ") + (v.node.IsMap() ? "map" : "list"));
    return std::nullopt;
  }
  std::string problem;
  std::string text = expand_env(v.node.Scalar(), problem);
  if (!problem.empty()) {
    fail(v, problem);
    return std::nullopt;
  }
  return text;
}

std::optional<std::string> Reader::scalar(const YAML::Node& node, const std::string& path) {
  const auto v = resolve(node, path);
  return v ? text_of(*v) : std::nullopt;
}

bool Reader::range_ok(double value, Range range, const Value& v) {
  switch (range) {
    case Range::Any:
      return true;
    case Range::Positive:
      if (value > 0) return true;
      fail(v, "must be greater than 0, got " + trim(v.node.Scalar()));
      return false;
    case Range::NonNegative:
      if (value >= 0) return true;
      fail(v, "must be 0 or more, got " + trim(v.node.Scalar()));
      return false;
    case Range::Probability:
      if (value >= 0 && value < 1) return true;
      fail(v, "must be in [0, 1), got " + trim(v.node.Scalar()));
      return false;
  }
  return true;
}

namespace {

/// An integer as YAML 1.2's core schema writes it: [-+]?[0-9]+, 0x[0-9a-fA-F]+ or 0o[0-7]+.
std::optional<long long> core_schema_int(const std::string& t) {
  static const std::regex kDecimal("[-+]?[0-9]+"), kHex("0x[0-9a-fA-F]+"), kOctal("0o[0-7]+");
  int base = 0;
  size_t skip = 0;
  if (std::regex_match(t, kDecimal))
    base = 10;
  else if (std::regex_match(t, kHex))
    base = 16, skip = 2;
  else if (std::regex_match(t, kOctal))
    base = 8, skip = 2;
  else
    return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const long long value = std::strtoll(t.c_str() + skip, &end, base);
  if (errno == ERANGE || *end != '\0') return std::nullopt;
  return value;
}

}  // namespace

std::optional<int64_t> Reader::to_int(const YAML::Node& node, const std::string& path, Range range) {
  const auto v = resolve(node, path);
  const auto text = v ? text_of(*v) : std::nullopt;
  if (!text) return std::nullopt;
  const std::string t = trim(*text);
  const std::optional<long long> parsed = core_schema_int(t);
  if (!parsed) {
    const bool digits = !t.empty() && t.find_first_not_of("+-0123456789") == std::string::npos;
    fail(*v, digits ? "is too large for an integer (at most 9223372036854775807), got '" + t + "'"
                    : "must be an integer, got '" + t + "'");
    return std::nullopt;
  }
  const long long value = *parsed;
  if (!range_ok(static_cast<double>(value), range, *v)) return std::nullopt;
  return value;
}

std::optional<double> Reader::to_double(const YAML::Node& node, const std::string& path, Range range) {
  const auto v = resolve(node, path);
  const auto text = v ? text_of(*v) : std::nullopt;
  if (!text) return std::nullopt;
  const std::string t = trim(*text);
  // YAML 1.2's core schema: a float as [-+]?(.5|5|5.|5.5)(e[-+]?5)?, or one of its integers (0x10, 0o17).
  static const std::regex kCoreFloat("[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?");
  double value = 0;
  if (std::regex_match(t, kCoreFloat)) {
    errno = 0;
    value = std::strtod(t.c_str(), nullptr);
    if (errno == ERANGE || !std::isfinite(value)) {
      fail(*v, "must be a number, got '" + t + "' (out of range)");
      return std::nullopt;
    }
  } else if (const auto as_int = core_schema_int(t)) {
    value = static_cast<double>(*as_int);
  } else {
    fail(*v, "must be a number, got '" + t + "'");
    return std::nullopt;
  }
  if (!range_ok(value, range, *v)) return std::nullopt;
  return value;
}

std::optional<bool> Reader::to_bool(const YAML::Node& node, const std::string& path) {
  const auto v = resolve(node, path);
  const auto text = v ? text_of(*v) : std::nullopt;
  if (!text) return std::nullopt;
  const std::string t = trim(*text);
  // YAML 1.2's core schema: yes/no/on/off are words, not booleans (they were in YAML 1.1).
  if (t == "true" || t == "True" || t == "TRUE") return true;
  if (t == "false" || t == "False" || t == "FALSE") return false;
  fail(*v, "must be true or false, got '" + t + "'" +
               (t == "yes" || t == "no" || t == "on" || t == "off" || t == "y" || t == "n"
                    ? " (the DSL reads YAML 1.2's core schema: yes/no/on/off are not booleans)"
                    : ""));
  return std::nullopt;
}

std::optional<std::string> Reader::to_choice(const YAML::Node& node, const std::string& path,
                                             const std::vector<std::string>& choices) {
  const auto v = resolve(node, path);
  const auto text = v ? text_of(*v) : std::nullopt;
  if (!text || choices.empty()) return text;
  if (std::find(choices.begin(), choices.end(), *text) != choices.end()) return text;
  std::string message = "'" + *text + "' is not one of: " + join(choices);
  const std::string near = did_you_mean(*text, choices);
  if (!near.empty()) message += " (did you mean '" + near + "'?)";
  fail(*v, message);
  return std::nullopt;
}

namespace {
// yaml-cpp nodes are references: copy-construct only, never assign, so that a
// missing or wrongly typed section reads as an empty map without touching the document.
YAML::Node map_or_empty(const YAML::Node& node) {
  return node.IsDefined() && node.IsMap() ? node : YAML::Node(YAML::NodeType::Map);
}
}  // namespace

MapView::MapView(Reader& reader, YAML::Node node, std::string path, std::vector<std::string> known)
    : reader_(reader), node_(map_or_empty(node)), path_(std::move(path)) {
  if (!node.IsDefined() || node.IsNull()) return;
  if (!node.IsMap()) {
    reader_.error(node, path_, "must be a map of keys (" + join(known) + ")");
    ok_ = false;
    return;
  }
  for (const auto& item : node_) {
    const std::string key = item.first.Scalar();
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    std::string message = "unknown key";
    const std::string near = did_you_mean(key, known);
    message += near.empty() ? "; valid keys here: " + join(known) : " (did you mean '" + near + "'?)";
    reader_.error(item.first, this->path(key), message);
    ok_ = false;
  }
}

bool MapView::has(const std::string& key) const { return node_[key].IsDefined(); }
YAML::Node MapView::node(const std::string& key) const { return node_[key]; }

bool MapView::require(const std::string& key) {
  if (has(key)) return true;
  reader_.error(node_, path(key), "missing required key" + (path_.empty() ? "" : " in '" + path_ + "'"));
  return false;
}

void MapView::get(const std::string& key, int64_t& target, Range range) {
  if (!has(key)) return;
  if (auto v = reader_.to_int(node(key), path(key), range)) target = *v;
}
void MapView::get(const std::string& key, double& target, Range range) {
  if (!has(key)) return;
  if (auto v = reader_.to_double(node(key), path(key), range)) target = *v;
}
void MapView::get(const std::string& key, bool& target) {
  if (!has(key)) return;
  if (auto v = reader_.to_bool(node(key), path(key))) target = *v;
}
void MapView::get(const std::string& key, std::string& target) {
  if (!has(key)) return;
  if (auto v = reader_.scalar(node(key), path(key))) target = *v;
}
void MapView::get_choice(const std::string& key, std::string& target, const std::vector<std::string>& choices) {
  if (!has(key)) return;
  if (auto v = reader_.to_choice(node(key), path(key), choices)) target = *v;
}

}  // namespace runner
