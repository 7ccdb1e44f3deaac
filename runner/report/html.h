// What the report's HTML and SVG writers share.
#pragma once
#include <cstdio>
#include <string>

namespace runner {

/// Text made safe inside HTML and SVG elements and attribute values.
inline std::string html_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

/// A number with `digits` decimals.
inline std::string fixed_text(double v, int digits = 2) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

}  // namespace runner
