// Hashes for the stream table (128 bits from a name) and the dedup index (64 bits from an event id).
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace hfe::store::internal {

inline uint64_t Mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

inline uint64_t HashBytes(std::string_view s, uint64_t seed) {
  uint64_t h = seed ^ (s.size() * 0x9e3779b97f4a7c15ull);
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = Mix64(h ^ w) + 0x9e3779b97f4a7c15ull;
  }
  uint64_t tail = 0;
  std::memcpy(&tail, s.data() + i, s.size() - i);
  return Mix64(h ^ tail ^ (uint64_t{s.size() - i} << 56));
}

struct Hash128 {
  uint64_t lo;
  uint64_t hi;
};

// Never returns lo == 0: zero marks an empty stream slot.
inline Hash128 HashStream(std::string_view name) {
  Hash128 h{HashBytes(name, 0x243f6a8885a308d3ull), HashBytes(name, 0x13198a2e03707344ull)};
  if (h.lo == 0) h.lo = 1;
  return h;
}

inline uint64_t HashEventId(uint64_t hi, uint64_t lo) { return Mix64(hi ^ Mix64(lo + 0x9e3779b97f4a7c15ull)); }

}  // namespace hfe::store::internal
