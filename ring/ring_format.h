// The shared-memory layout of hfevents rings (SPSC and MPMC). Writer and reader processes both include this.
//
// Block map (offsets in bytes from the ring's start):
//   +------------------------------+ 0
//   | RingHeader                   |  magic, layout version (written last), kind, slot size, capacity
//   +------------------------------+ 128
//   | producer line: tail / enqueue position (u64), then padding to 256                         |
//   +------------------------------+ 256
//   | consumer line: head / dequeue position (u64), then padding to 384                         |
//   +------------------------------+ 384
//   | slots[capacity]              |  SPSC: T each; MPMC: {sequence u64, T} each, 8-byte aligned
//   +------------------------------+
// Indices are 64-bit sequences that only grow (no ABA); a slot is `sequence & (capacity - 1)`. The two
// index lines sit 128 bytes apart so the adjacent-line prefetcher does not couple them.
//
// RingHeader:
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +---------------------------------------------------------------+
//  |                         magic (u64)                           |  0
//  |                                                               |
//  +---------------------------------------------------------------+
//  |         layout version (u32, release-stored last)             |  8
//  +---------------------------------------------------------------+
//  |         kind (u32: 1 SPSC, 2 MPMC)                            | 12
//  +---------------------------------------------------------------+
//  |         slot size (u32: sizeof(T))                            | 16
//  +---------------------------------------------------------------+
//  |         slot stride (u32: bytes per slot)                     | 20
//  +---------------------------------------------------------------+
//  |         capacity (u64, a power of two)                        | 24
//  |                                                               |
//  +---------------------------------------------------------------+
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace hfe::ring::format {

inline constexpr uint64_t kRingMagic = 0x31474e49'52454648ull;  // "HFERING1"
inline constexpr uint32_t kRingLayoutVersion = 1;
inline constexpr uint32_t kKindSpsc = 1;
inline constexpr uint32_t kKindMpmc = 2;
inline constexpr size_t kTailOffset = 128;
inline constexpr size_t kHeadOffset = 256;
inline constexpr size_t kSlotsOffset = 384;
inline constexpr uint64_t kMaxCapacity = 1ull << 32;

struct RingHeader {
  uint64_t magic;
  uint32_t layout_version;  // atomic
  uint32_t kind;
  uint32_t slot_size;
  uint32_t slot_stride;
  uint64_t capacity;
};
static_assert(offsetof(RingHeader, magic) == 0);
static_assert(offsetof(RingHeader, layout_version) == 8);
static_assert(offsetof(RingHeader, kind) == 12);
static_assert(offsetof(RingHeader, slot_size) == 16);
static_assert(offsetof(RingHeader, slot_stride) == 20);
static_assert(offsetof(RingHeader, capacity) == 24);
static_assert(sizeof(RingHeader) == 32);
static_assert(sizeof(RingHeader) <= kTailOffset);
static_assert(kHeadOffset - kTailOffset == 128 && kSlotsOffset - kHeadOffset == 128);
static_assert(std::atomic_ref<uint64_t>::is_always_lock_free);

inline constexpr size_t AlignUp(size_t v, size_t a) { return (v + a - 1) & ~(a - 1); }

}  // namespace hfe::ring::format
