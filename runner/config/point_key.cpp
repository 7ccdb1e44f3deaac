#include "runner/config/point_key.h"

#include <cctype>
#include <cstdlib>

namespace runner {

namespace {

/// Where the value after `from` ends: at the next " word=" (a key's start: a
/// letter or '_', then letters, digits, '_' and '.'), else at the end.
size_t value_end(const std::string& text, size_t from) {
  for (size_t at = text.find(' ', from); at != std::string::npos; at = text.find(' ', at + 1)) {
    size_t k = at + 1;
    if (k >= text.size() || !(std::isalpha(static_cast<unsigned char>(text[k])) || text[k] == '_')) continue;
    while (k < text.size() && (std::isalnum(static_cast<unsigned char>(text[k])) || text[k] == '_' || text[k] == '.'))
      ++k;
    if (k < text.size() && text[k] == '=') return at;
  }
  return text.size();
}

std::optional<int64_t> whole_number(const std::string& text) {
  if (text.empty() || text.size() > 18) return std::nullopt;
  for (char c : text)
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
  return std::atoll(text.c_str());
}

}  // namespace

std::string PointKey::text() const {
  std::string out = sample ? "sample=" + std::to_string(*sample) + " " : "";
  for (const auto& [key, value] : values) out += key + "=" + value + " ";
  out += "seed=" + std::to_string(seed);
  if (rung) out += " rung=" + std::to_string(*rung);
  return out;
}

std::optional<PointKey> PointKey::parse(const std::string& text) {
  PointKey key;
  bool has_seed = false;
  for (size_t at = 0; at < text.size();) {
    const size_t eq = text.find('=', at);
    if (eq == std::string::npos) return std::nullopt;
    const size_t end = value_end(text, eq + 1);
    const std::string name = text.substr(at, eq - at), value = text.substr(eq + 1, end - eq - 1);
    if (name == "sample" || name == "seed" || name == "rung") {
      const auto number = whole_number(value);
      if (!number) return std::nullopt;
      if (name == "sample") key.sample = *number;
      if (name == "seed") key.seed = *number, has_seed = true;
      if (name == "rung") key.rung = *number;
    } else {
      if (has_seed) return std::nullopt;  // values come before the seed
      key.values.emplace_back(name, value);
    }
    at = end + 1;
  }
  if (!has_seed) return std::nullopt;
  return key;
}

PointKey PointKey::with_rung(int64_t r) const {
  PointKey out = *this;
  out.rung = r;
  return out;
}

PointKey PointKey::without_rung() const {
  PointKey out = *this;
  out.rung.reset();
  return out;
}

std::string PointKey::value(const std::string& key) const {
  for (const auto& [name, value] : values)
    if (name == key) return value;
  return "";
}

}  // namespace runner
