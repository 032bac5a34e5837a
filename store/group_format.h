// The layout of a consumer group's file `groups/<name>.grp`: partition cursors, the member table and one
// work ring per member. Every member process maps it; the dispatcher (one member at a time) writes the
// assignment and pushes work; each member acks the partitions it owns.
//
// Block map:
//   +-----------------------------+ 0
//   | GroupHeader (8192 bytes)    |  handshake, geometry, filter, dispatcher lease, cursors, members,
//   |                             |  assignment
//   +-----------------------------+ 8192
//   | member 0's SpscRing<Work>   |  dispatcher -> member 0
//   | member 1's SpscRing<Work>   |  ...
//   +-----------------------------+ 8192 + max_members * ring_bytes
//
// Streams are pinned to partitions by the low half of their 128-bit name hash modulo `partitions`; a
// partition belongs to one member at a time, and its events reach that member in log order through the
// member's ring, so each stream is handled in version order. acked[p] is the position after the newest
// event of partition p that its owner acknowledged; dispatched[p] the position after the newest one pushed.
//
// Members and generations
// -----------------------
// A member slot is reused by later processes, so its index alone does not say who was given a partition's
// work. Every Join that takes a slot bumps the slot's generation; owner[p] names the member by index *and*
// generation. The dispatcher treats a partition whose owner word names an older generation than the slot's
// as orphaned (its events in flight went down with the old process's ring): it rewinds it to acked[p] and
// assigns it again. The dispatcher (the ring's producer) lays a slot's ring out afresh for each generation
// and then release-stores ring_generation; the member consumes from its ring only once ring_generation is
// its own, so nobody pushes into a ring while it is being laid out.
//
// The dispatcher role and the dispatch lock
// ------------------------------------------
// `leader` names the member that should dispatch; it moves to another member when its holder is gone or
// silent past the liveness timeout, which may happen while the holder is inside Rebalance or Dispatch (a
// stopped or descheduled process). Every member ring has a single producer, so pushing also needs
// `dispatch_lock`: the token of the process inside Rebalance and Dispatch, taken by CAS from 0 and taken
// over from a holder only once its process is gone. A new role holder thus dispatches only after a stalled
// one has left Dispatch, and re-checks the role once it holds the lock.
//
// A member silent past the liveness timeout is declared dead by setting the evicted bit of its lease (its
// token stays, so the slot is not reused while that process may still touch its ring); the member frees the
// slot itself when its next Poll finds the bit. A slot whose process is gone is taken by the next Join.
//
// MemberSlot (64 bytes):
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +---------------------------------------------------------------+
//  |        token (u64: liveness token of the process; 0 = free)   |  0
//  +---------------------------------------------------------------+
//  |        heartbeat_ns (i64, wall clock, refreshed every poll)   |  8
//  +---------------------------------------------------------------+
//  |        handled (u64)                                          | 16
//  +---------------------------------------------------------------+
//  |        failed (u64: handler attempts that failed)             | 24
//  +---------------------------------------------------------------+
//  |        parked (u64)                                           | 32
//  +---------------------------------------------------------------+
//  |        lease (u64, atomic: generation << 1 | evicted)         | 40
//  +---------------------------------------------------------------+
//  |        ring_generation (u64, atomic: the ring is laid out     | 48
//  |        for this generation; written by the dispatcher)        |
//  +---------------------------------------------------------------+
//  |        reserved (u64)                                         | 56
//  +---------------------------------------------------------------+
//
// owner[p] (u64, atomic): kUnowned, or
//  +-----------------------------------------------+---------------+
//  |  generation of the member (56 bits)           | member (u8)   |
//  +-----------------------------------------------+---------------+
#pragma once

#include <cstddef>
#include <cstdint>

#include "ipc/region_format.h"

namespace hfe::store::group_format {

inline constexpr uint64_t kGroupMagic = 0x31505247'45464848ull;  // "HHFEGRP1"
inline constexpr uint32_t kGroupLayoutVersion = 2;  // 2: member generations, owner words, dispatch lock
inline constexpr uint32_t kMaxPartitions = 256;
inline constexpr uint32_t kMaxMembers = 16;
inline constexpr size_t kGroupHeaderSize = 8192;

inline constexpr uint64_t kEvicted = 1;
inline constexpr uint64_t LeaseOf(uint64_t generation) { return generation << 1; }
inline constexpr uint64_t LeaseGeneration(uint64_t lease) { return lease >> 1; }
inline constexpr bool LeaseEvicted(uint64_t lease) { return (lease & kEvicted) != 0; }

inline constexpr uint64_t kUnowned = ~0ull;
inline constexpr uint64_t OwnerWord(uint32_t member, uint64_t generation) { return generation << 8 | (member & 0xff); }
inline constexpr uint32_t OwnerMember(uint64_t owner) { return static_cast<uint32_t>(owner & 0xff); }  // 0xff: none
inline constexpr uint64_t OwnerGeneration(uint64_t owner) { return owner >> 8; }
static_assert(OwnerMember(kUnowned) >= kMaxMembers);

struct Work {
  uint64_t position;   // the event's position in the log
  uint32_t partition;
  uint32_t epoch;      // the assignment epoch it was dispatched under
};
static_assert(sizeof(Work) == 16);

struct MemberSlot {
  uint64_t token;            // liveness token of the member process; 0 = free
  int64_t heartbeat_ns;      // wall clock, refreshed on every poll
  uint64_t handled;
  uint64_t failed;           // handler attempts that failed
  uint64_t parked;
  uint64_t lease;            // atomic: generation << 1 | evicted
  uint64_t ring_generation;  // atomic: the generation the dispatcher last laid this member's ring out for
  uint64_t reserved;
};
static_assert(offsetof(MemberSlot, token) == 0);
static_assert(offsetof(MemberSlot, heartbeat_ns) == 8);
static_assert(offsetof(MemberSlot, handled) == 16);
static_assert(offsetof(MemberSlot, failed) == 24);
static_assert(offsetof(MemberSlot, parked) == 32);
static_assert(offsetof(MemberSlot, lease) == 40);
static_assert(offsetof(MemberSlot, ring_generation) == 48);
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
  uint64_t dispatch_lock;           //  304  atomic: token of the process inside Rebalance/Dispatch; 0 free
  uint8_t pad1[1024 - 312];
  uint64_t acked[kMaxPartitions];       // 1024  atomic each
  uint64_t dispatched[kMaxPartitions];  // 3072
  MemberSlot members[kMaxMembers];      // 5120
  uint64_t owner[kMaxPartitions];       // 6144  atomic each: OwnerWord(member, generation) or kUnowned
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
static_assert(offsetof(GroupHeader, dispatch_lock) == 304);
static_assert(offsetof(GroupHeader, acked) == 1024);
static_assert(offsetof(GroupHeader, dispatched) == 3072);
static_assert(offsetof(GroupHeader, members) == 5120);
static_assert(offsetof(GroupHeader, owner) == 6144);
static_assert(sizeof(GroupHeader) == kGroupHeaderSize);
static_assert(alignof(GroupHeader) == 8);

}  // namespace hfe::store::group_format
