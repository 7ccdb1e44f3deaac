// Small text helpers every stage may use.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace runner {

/// 39056 -> "39,056".
std::string format_thousands(int64_t value);

/// Seconds as H:MM:SS, hours always shown so ETA columns line up, truncated; "-" for NaN or negative.
std::string format_hms(double seconds);

/// Seconds rounded, as M:SS under an hour and H:MM:SS from one on (progress lines).
std::string format_duration(double seconds);

/// A number with `digits` decimals: fixed_text(75.268) == "75.27" (accuracies, metrics).
std::string fixed_text(double v, int digits = 2);

/// {"a", "b"} -> "a, b".
std::string join(const std::vector<std::string>& items, const std::string& sep = ", ");

}  // namespace runner
