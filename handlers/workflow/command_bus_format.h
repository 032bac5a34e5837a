// The layout of a store's command bus, `rings/commands.bus`: the workflow handlers (producers, in any handler
// process) put commands on it; one command-handling process (the provider) takes them off.
//
// Block map:
//   +--------------------------------+ 0
//   | BusHeader (4096 bytes)         |  handshake, geometry, consumer lease, doorbell, producer table
//   +--------------------------------+ 4096
//   | producer 0's SpscRing<Slot>    |  producer 0 -> consumer
//   | producer 1's SpscRing<Slot>    |
//   | ...                            |
//   +--------------------------------+ 4096 + kMaxProducers * ring_bytes
//
// Why one SPSC ring per producer rather than one MPMC ring: a producer SIGKILLed between claiming and
// publishing an MPMC slot would stall the whole ring; here it stalls nothing. A producer slot belongs to the
// process whose liveness token it holds; a later process takes over a dead owner's slot and its ring, and
// continues from the ring's published tail (anything the dead owner wrote but did not publish is rewritten).
//
// The consumer lease is a liveness token as well: one consumer at a time, a dead one is replaced. The
// doorbell is a futex word a producer bumps after each push; it wakes the consumer only when `sleeping` says
// the consumer parked, so a push costs no system call while the consumer is busy.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ipc/region_format.h"

namespace hfe::handlers::bus_format {

inline constexpr uint64_t kBusMagic = 0x31424d43'45464848ull;  // "HHFECMB1"
inline constexpr uint32_t kBusLayoutVersion = 1;
inline constexpr uint32_t kMaxProducers = 16;
inline constexpr size_t kBusHeaderSize = 4096;
inline constexpr uint32_t kMaxCommandBytes = 504;

// One command: a FlatBuffers `Command` of `size` bytes (verified by the consumer before use).
struct Slot {
  uint32_t size;
  uint32_t reserved;
  uint8_t bytes[kMaxCommandBytes];
};
static_assert(offsetof(Slot, bytes) == 8);
static_assert(sizeof(Slot) == 512);

struct ProducerSlot {
  uint64_t token;      // atomic: liveness token of the owning process; 0 = free
  uint64_t pushed;     // commands put on this ring, over all owners
  uint64_t full;       // pushes that found the ring full and had to wait
  uint8_t reserved[40];
};
static_assert(offsetof(ProducerSlot, pushed) == 8);
static_assert(offsetof(ProducerSlot, full) == 16);
static_assert(sizeof(ProducerSlot) == 64);

struct BusHeader {
  ipc::RegionHeader region;           //    0
  uint32_t max_producers;             //   32
  uint32_t slot_size;                 //   36
  uint64_t ring_capacity;             //   40
  uint64_t ring_bytes;                //   48
  uint8_t pad0[128 - 56];
  uint64_t consumer;                  //  128  atomic: the consumer's liveness token; 0 = none
  int64_t consumer_heartbeat_ns;      //  136  wall clock, refreshed on every receive
  uint32_t doorbell;                  //  144  futex word, bumped after each push
  uint32_t sleeping;                  //  148  1 while the consumer is parked on the doorbell
  uint64_t received;                  //  152  commands the consumers took off the bus
  uint8_t pad1[256 - 160];
  ProducerSlot producers[kMaxProducers];  // 256
  uint8_t pad2[kBusHeaderSize - 256 - kMaxProducers * sizeof(ProducerSlot)];
};
static_assert(offsetof(BusHeader, max_producers) == 32);
static_assert(offsetof(BusHeader, slot_size) == 36);
static_assert(offsetof(BusHeader, ring_capacity) == 40);
static_assert(offsetof(BusHeader, ring_bytes) == 48);
static_assert(offsetof(BusHeader, consumer) == 128);
static_assert(offsetof(BusHeader, consumer_heartbeat_ns) == 136);
static_assert(offsetof(BusHeader, doorbell) == 144);
static_assert(offsetof(BusHeader, sleeping) == 148);
static_assert(offsetof(BusHeader, received) == 152);
static_assert(offsetof(BusHeader, producers) == 256);
static_assert(sizeof(BusHeader) == kBusHeaderSize);

}  // namespace hfe::handlers::bus_format
