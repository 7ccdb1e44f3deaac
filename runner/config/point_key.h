// The identity of a sweep point across reruns, kept as the text of
// sweep_points.point_key: "sample=S k1=v1 … seed=N rung=R". `sample=` only in a
// sampled search (two draws may give the same values), ` rung=` only for a
// halving rung. Values are the YAML text given to --set and may hold spaces
// ("[conv, relu]"), so a value ends where the next " key=" starts. The grid
// builds keys, the sweep adds rungs, the report reads them back: all through this.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace runner {

struct PointKey {
  std::optional<int64_t> sample;
  std::vector<std::pair<std::string, std::string>> values;  ///< dotted key, value; in grid order
  int64_t seed = 0;
  std::optional<int64_t> rung;

  std::string text() const;
  /// The key `text` holds; nullopt when it is none (no "seed=N").
  static std::optional<PointKey> parse(const std::string& text);

  PointKey with_rung(int64_t r) const;
  PointKey without_rung() const;
  /// The value set for a dotted key; "" when the point sets none.
  std::string value(const std::string& key) const;

  bool operator==(const PointKey& other) const { return text() == other.text(); }
  bool operator!=(const PointKey& other) const { return !(*this == other); }
};

}  // namespace runner
