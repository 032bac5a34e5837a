// The header every hfevents region and file starts with: the create/attach handshake.
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +---------------------------------------------------------------+
//  |                         magic (u64)                           |  0
//  |                                                               |
//  +---------------------------------------------------------------+
//  |                 layout version (u32, written last)            |  8
//  +---------------------------------------------------------------+
//  |                 header size (u32)                             | 12
//  +---------------------------------------------------------------+
//  |                 region size (u64)                             | 16
//  |                                                               |
//  +---------------------------------------------------------------+
//  |                 creator token (u64: pid | start time << 32)   | 24
//  |                                                               |
//  +---------------------------------------------------------------+
//
// The creator fills the whole region, then release-stores the layout version; an opener acquire-loads it:
// 0 means "await" (still being created), the expected version means "ready", anything else "incompatible".
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace hfe::ipc {

struct RegionHeader {
  uint64_t magic;
  uint32_t layout_version;  // atomic: release-stored last by the creator
  uint32_t header_size;
  uint64_t region_size;
  uint64_t creator_token;
};

static_assert(offsetof(RegionHeader, magic) == 0);
static_assert(offsetof(RegionHeader, layout_version) == 8);
static_assert(offsetof(RegionHeader, header_size) == 12);
static_assert(offsetof(RegionHeader, region_size) == 16);
static_assert(offsetof(RegionHeader, creator_token) == 24);
static_assert(sizeof(RegionHeader) == 32);
static_assert(std::atomic_ref<uint32_t>::is_always_lock_free);
static_assert(std::atomic_ref<uint64_t>::is_always_lock_free);

}  // namespace hfe::ipc
