// EventId and ExpectedVersion: parsing and printing.
#include "store/types.h"

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <chrono>

#include <sys/random.h>

#include <charconv>
#include <cstdio>
#include <random>

namespace hfe::store {

namespace {

// A forked child inherits its parent's generator state; without a reseed both processes would produce the
// same ids (and the store would take the child's events for duplicates). A fork handler bumps this
// generation, and a generator seeded under an older generation seeds itself again.
std::atomic<uint64_t> g_fork_generation{0};
void OnFork() { g_fork_generation.fetch_add(1, std::memory_order_relaxed); }
const bool g_fork_handler = [] { return pthread_atfork(nullptr, nullptr, OnFork) == 0; }();

std::mt19937_64 SeededGenerator() {
  uint64_t seed[2] = {0, 0};
  if (getrandom(seed, sizeof seed, 0) != sizeof seed) {
    seed[0] = reinterpret_cast<uintptr_t>(&seed) ^ static_cast<uint64_t>(getpid());
    seed[1] = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  }
  std::seed_seq seq{seed[0], seed[0] >> 32, seed[1], seed[1] >> 32};
  return std::mt19937_64(seq);
}

}  // namespace

EventId EventId::Random() {
  thread_local std::mt19937_64 gen = SeededGenerator();
  thread_local uint64_t generation = g_fork_generation.load(std::memory_order_relaxed);
  if (uint64_t now = g_fork_generation.load(std::memory_order_relaxed); now != generation) {
    generation = now;
    gen = SeededGenerator();
  }
  EventId id{gen(), gen()};
  id.hi = (id.hi & ~0xf000ull) | 0x4000ull;               // version 4
  id.lo = (id.lo & 0x3fffffffffffffffull) | 0x8000000000000000ull;  // RFC 4122 variant
  return id;
}

std::string EventId::ToString() const {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xffff), static_cast<unsigned>(hi & 0xffff),
                static_cast<unsigned>(lo >> 48), static_cast<unsigned long long>(lo & 0xffffffffffffull));
  return buf;
}

std::optional<EventId> EventId::Parse(std::string_view text) {
  if (text.size() != 36 || text[8] != '-' || text[13] != '-' || text[18] != '-' || text[23] != '-') return std::nullopt;
  uint64_t parts[2] = {0, 0};
  int nibble = 0;
  for (char c : text) {
    if (c == '-') continue;
    int v;
    if (c >= '0' && c <= '9') v = c - '0';
    else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
    else return std::nullopt;
    uint64_t& p = parts[nibble / 16];
    p = (p << 4) | static_cast<uint64_t>(v);
    ++nibble;
  }
  if (nibble != 32) return std::nullopt;
  return EventId{parts[0], parts[1]};
}

std::optional<ExpectedVersion> ExpectedVersion::Parse(std::string_view text) {
  if (text == "any") return Any();
  if (text == "no-stream") return NoStream();
  if (text == "exists") return StreamExists();
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size() || text.empty()) return std::nullopt;
  return Exact(v);
}

std::string ExpectedVersion::ToString() const {
  switch (kind) {
    case Kind::kAny: return "any";
    case Kind::kNoStream: return "no-stream";
    case Kind::kStreamExists: return "exists";
    case Kind::kExact: return std::to_string(version);
  }
  return "?";
}

}  // namespace hfe::store
