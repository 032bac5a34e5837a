// Clocks: wall time for event timestamps, monotonic time for timeouts, and ISO 8601 formatting.
#pragma once

#include <time.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hfe::clock {

inline int64_t WallNanos() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

inline int64_t MonotonicNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// "2025-06-30T12:00:00.123456789Z"
std::string FormatIso8601(int64_t wall_nanos);
// Accepts "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)" and "YYYY-MM-DD"; nullopt when malformed.
std::optional<int64_t> ParseIso8601(std::string_view text);

}  // namespace hfe::clock
