// Small text helpers every stage may use.
#pragma once
#include <cstdint>
#include <string>

namespace runner {

/// 39056 -> "39,056".
std::string format_thousands(int64_t value);

}  // namespace runner
