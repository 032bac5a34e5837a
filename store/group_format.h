// The layout of a consumer group's file `groups/<name>.grp`: partition cursors, the member table and one
// work ring per member. Every member process maps it; the dispatcher (one member at a time) writes the
// assignment and pushes work; each member acks the partitions it owns.
//
// Block map:
//   +-----------------------------+ 0
//   | GroupHeader (8192 bytes)    |  handshake, geometry, filter, dispatcher lease, assignment, cursors,
//   |                             |  members
//   +-----------------------------+ 8192
//   | member 0's SpscRing<Work>   |  dispatcher -> member 0
//   | member 1's SpscRing<Work>   |  ...
//   +-----------------------------+ 8192 + max_members * ring_bytes
//
// Streams are pinned to partitions by the low half of their 128-bit name hash modulo `partitions`; a
// partition belongs to one member at a time, and its events reach that member in log order through the
// member's ring, so each stream is handled in version order. acked[p] is the position after the newest
// event of partition p that its owner acknowledged; dispatched[p] the position after the newest one pushed.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ipc/region_format.h"

namespace hfe::store::group_format {

inline constexpr uint64_t kGroupMagic = 0x31505247'45464848ull;  // "HHFEGRP1"
inline constexpr uint32_t kGroupLayoutVersion = 1;
inline constexpr uint32_t kMaxPartitions = 256;
inline constexpr uint32_t kMaxMembers = 16;
inline constexpr uint32_t kNoOwner = 0xff;
inline constexpr size_t kGroupHeaderSize = 8192;

struct Work {
  uint64_t position;   // the event's position in the log
  uint32_t partition;
  uint32_t epoch;      // the assignment epoch it was dispatched under
};
static_assert(sizeof(Work) == 16);

struct MemberSlot {
  uint64_t token;          // liveness token of the member process; 0 = free
  int64_t heartbeat_ns;    // wall clock, refreshed on every poll
  uint64_t handled;
  uint64_t failed;         // handler attempts that failed
  uint64_t parked;
  uint8_t reserved[24];
};
static_assert(offsetof(MemberSlot, heartbeat_ns) == 8);
static_assert(offsetof(MemberSlot, parked) == 32);
static_assert(sizeof(MemberSlot) == 64);

struct GroupHeader {
  ipc::RegionHeader region;         //    0
  uint32_t partitions;              //   32
  uint32_t max_members;             //   36
  uint64_t ring_capacity;           //   40
  uint64_t ring_bytes;              //   48
  int64_t liveness_timeout_ns;      //   56
  uint64_t type_filter[4];          //   64
  uint16_t prefix_length;           //   96
  uint8_t reserved0[6];             //   98
  char prefix[64];                  //  104
  uint32_t retry_budget;            //  168
  uint32_t reserved1;               //  172
  uint8_t pad0[256 - 176];
  uint64_t leader;                  //  256  atomic: the dispatcher's liveness token
  int64_t leader_heartbeat_ns;      //  264
  uint64_t dispatch_position;       //  272  where the dispatcher reads the log next
  uint64_t epoch;                   //  280  bumped on every change of assignment
  uint64_t start_position;          //  288
  uint64_t parked_replayed;         //  296  versions of "$parked-<group>" already replayed
  uint8_t pad1[512 - 304];
  uint8_t owner[kMaxPartitions];    //  512  member index per partition, kNoOwner when unassigned
  uint8_t pad2[1024 - 768];
  uint64_t acked[kMaxPartitions];       // 1024  atomic each
  uint64_t dispatched[kMaxPartitions];  // 3072
  MemberSlot members[kMaxMembers];      // 5120
  uint8_t pad3[kGroupHeaderSize - 6144];
};
static_assert(offsetof(GroupHeader, partitions) == 32);
static_assert(offsetof(GroupHeader, ring_capacity) == 40);
static_assert(offsetof(GroupHeader, liveness_timeout_ns) == 56);
static_assert(offsetof(GroupHeader, type_filter) == 64);
static_assert(offsetof(GroupHeader, prefix_length) == 96);
static_assert(offsetof(GroupHeader, prefix) == 104);
static_assert(offsetof(GroupHeader, retry_budget) == 168);
static_assert(offsetof(GroupHeader, leader) == 256);
static_assert(offsetof(GroupHeader, dispatch_position) == 272);
static_assert(offsetof(GroupHeader, epoch) == 280);
static_assert(offsetof(GroupHeader, start_position) == 288);
static_assert(offsetof(GroupHeader, parked_replayed) == 296);
static_assert(offsetof(GroupHeader, owner) == 512);
static_assert(offsetof(GroupHeader, acked) == 1024);
static_assert(offsetof(GroupHeader, dispatched) == 3072);
static_assert(offsetof(GroupHeader, members) == 5120);
static_assert(sizeof(GroupHeader) == kGroupHeaderSize);

}  // namespace hfe::store::group_format
