// Small text helpers every stage may use.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace runner {

/// 39056 -> "39,056".
std::string format_thousands(int64_t value);

/// {"a", "b"} -> "a, b".
std::string join(const std::vector<std::string>& items, const std::string& sep = ", ");

}  // namespace runner
