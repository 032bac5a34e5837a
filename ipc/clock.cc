// ISO 8601 formatting and parsing for timestamps given on the command line and printed in JSON.
#include "ipc/clock.h"

#include <cstdio>

namespace hfe::clock {

std::string FormatIso8601(int64_t wall_nanos) {
  int64_t secs = wall_nanos / 1'000'000'000;
  int64_t frac = wall_nanos % 1'000'000'000;
  if (frac < 0) {
    frac += 1'000'000'000;
    --secs;
  }
  time_t t = static_cast<time_t>(secs);
  tm g;
  gmtime_r(&t, &g);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", g.tm_year + 1900, g.tm_mon + 1,
                g.tm_mday, g.tm_hour, g.tm_min, g.tm_sec, static_cast<long long>(frac));
  return buf;
}

std::optional<int64_t> ParseIso8601(std::string_view text) {
  std::string s(text);
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, used = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2d%n", &y, &mo, &d, &used) != 3 || used != 10) return std::nullopt;
  size_t i = 10;
  int64_t frac_ns = 0;
  int64_t offset_s = 0;
  if (i < s.size()) {
    if (s[i] != 'T' && s[i] != ' ') return std::nullopt;
    int n2 = 0;
    if (std::sscanf(s.c_str() + i + 1, "%2d:%2d:%2d%n", &h, &mi, &sec, &n2) != 3 || n2 != 8) return std::nullopt;
    i += 9;
    if (i < s.size() && s[i] == '.') {
      ++i;
      int digits = 0;
      while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
        if (digits < 9) {
          frac_ns = frac_ns * 10 + (s[i] - '0');
          ++digits;
        }
        ++i;
      }
      if (digits == 0) return std::nullopt;
      for (; digits < 9; ++digits) frac_ns *= 10;
    }
    if (i < s.size()) {
      if (s[i] == 'Z' && i + 1 == s.size()) {
        i = s.size();
      } else if ((s[i] == '+' || s[i] == '-') && s.size() - i == 6 && s[i + 3] == ':') {
        int oh = 0, om = 0;
        if (std::sscanf(s.c_str() + i + 1, "%2d:%2d", &oh, &om) != 2) return std::nullopt;
        offset_s = (oh * 3600 + om * 60) * (s[i] == '+' ? 1 : -1);
        i = s.size();
      } else {
        return std::nullopt;
      }
    }
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return std::nullopt;
  tm g{};
  g.tm_year = y - 1900;
  g.tm_mon = mo - 1;
  g.tm_mday = d;
  g.tm_hour = h;
  g.tm_min = mi;
  g.tm_sec = sec;
  time_t t = timegm(&g);
  // Nanoseconds since the epoch fit in 64 bits from 1677 to 2262.
  if (t - offset_s > 9'200'000'000ll || t - offset_s < -9'200'000'000ll) return std::nullopt;
  return (static_cast<int64_t>(t) - offset_s) * 1'000'000'000 + frac_ns;
}

}  // namespace hfe::clock
