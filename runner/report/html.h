// What the report's HTML and SVG writers share.
#pragma once
#include <cstdio>
#include <string>

#include "runner/base/text.h"  // fixed_text, which the writers use with html_escape

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

}  // namespace runner
