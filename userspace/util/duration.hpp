#pragma once

#include <chrono>
#include <string_view>

namespace keyscope {

/// Parses "250ms", "2s", "1.5s", "5m", "1h" (a bare number means seconds).
/// Throws keyscope::Error naming the bad value.
std::chrono::milliseconds parse_duration(std::string_view text, std::string_view what);

}  // namespace keyscope
