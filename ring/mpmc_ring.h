// MpmcRing<T>: a bounded multi-producer / multi-consumer ring in shared memory (after D. Vyukov's bounded
// queue): every slot carries a sequence number that says whose turn it is.
//
// Thread safety / invariants
// - Any number of producers and consumers, in any processes.
// - Slot i's sequence is i + k*capacity when free for the producer of lap k, i + k*capacity + 1 when full.
// - A producer claims an enqueue position with a CAS, writes the slot, then release-stores the slot's
//   sequence; a consumer acquire-loads it, claims the dequeue position with a CAS, copies, and release-stores
//   the sequence for the next lap. 64-bit positions: no ABA.
// - A process killed between claiming and publishing a slot leaves that slot stuck: later consumers see
//   "empty" there (the ring stops at it) until the ring is recreated. Callers that need crash tolerance use
//   one SpscRing per producer instead (a dead producer then stalls only its own ring).
#pragma once

#include <cstring>
#include <span>
#include <string>
#include <type_traits>

#include "ring/spsc_ring.h"

namespace hfe::ring {

template <typename T>
class MpmcRing {
  static_assert(std::is_trivially_copyable_v<T>, "ring slots are copied as bytes between processes");

 public:
  static constexpr uint32_t kStride = static_cast<uint32_t>(format::AlignUp(sizeof(uint64_t) + sizeof(T), 8));

  static size_t BytesFor(uint64_t capacity) { return format::kSlotsOffset + capacity * kStride; }

  static Result<MpmcRing> Create(void* mem, size_t bytes, uint64_t capacity) {
    if (!internal::ValidCapacity(capacity)) {
      return InvalidArgument("ring capacity must be a power of two from 2 to 2^32, found " + std::to_string(capacity));
    }
    if (bytes < BytesFor(capacity)) {
      return InvalidArgument("ring of " + std::to_string(capacity) + " slots needs " + std::to_string(BytesFor(capacity)) +
                             " bytes, found " + std::to_string(bytes));
    }
    auto* base = static_cast<uint8_t*>(mem);
    std::memset(base + format::kTailOffset, 0, format::kSlotsOffset - format::kTailOffset);
    for (uint64_t i = 0; i < capacity; ++i) {
      std::memcpy(base + format::kSlotsOffset + i * kStride, &i, sizeof i);
    }
    internal::InitHeader(mem, format::kKindMpmc, sizeof(T), kStride, capacity);
    return MpmcRing(mem);
  }

  static Result<MpmcRing> Attach(void* mem, size_t bytes) {
    HFE_RETURN_IF_ERROR(internal::CheckHeader(mem, bytes, format::kKindMpmc, sizeof(T), kStride));
    return MpmcRing(mem);
  }

  uint64_t capacity() const { return mask_ + 1; }

  bool TryPush(const T& v) {
    uint64_t pos = enqueue_.load(std::memory_order_relaxed);
    for (;;) {
      uint8_t* slot = Slot(pos);
      // Acquire: pairs with the consumer's release of this slot's sequence; the slot is free to overwrite.
      uint64_t seq = Seq(slot).load(std::memory_order_acquire);
      int64_t dif = static_cast<int64_t>(seq - pos);
      if (dif == 0) {
        if (enqueue_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          std::memcpy(slot + sizeof(uint64_t), &v, sizeof(T));
          // Release: pairs with the consumer's acquire; the value is visible with the sequence.
          Seq(slot).store(pos + 1, std::memory_order_release);
          return true;
        }
      } else if (dif < 0) {
        return false;  // full
      } else {
        pos = enqueue_.load(std::memory_order_relaxed);
      }
    }
  }

  bool TryPop(T* out) {
    uint64_t pos = dequeue_.load(std::memory_order_relaxed);
    for (;;) {
      uint8_t* slot = Slot(pos);
      // Acquire: pairs with the producer's release of the sequence; the value is visible.
      uint64_t seq = Seq(slot).load(std::memory_order_acquire);
      int64_t dif = static_cast<int64_t>(seq - (pos + 1));
      if (dif == 0) {
        if (dequeue_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          std::memcpy(out, slot + sizeof(uint64_t), sizeof(T));
          // Release: pairs with the next lap's producer acquire; the slot may be overwritten.
          Seq(slot).store(pos + mask_ + 1, std::memory_order_release);
          return true;
        }
      } else if (dif < 0) {
        return false;  // empty
      } else {
        pos = dequeue_.load(std::memory_order_relaxed);
      }
    }
  }

  size_t TryPushBatch(std::span<const T> items) {
    size_t n = 0;
    while (n < items.size() && TryPush(items[n])) ++n;
    return n;
  }
  size_t TryPopBatch(std::span<T> out) {
    size_t n = 0;
    while (n < out.size() && TryPop(&out[n])) ++n;
    return n;
  }

  uint64_t Size() const {
    uint64_t e = enqueue_.load(std::memory_order_acquire), d = dequeue_.load(std::memory_order_acquire);
    return e > d ? e - d : 0;
  }

 private:
  explicit MpmcRing(void* mem)
      : base_(static_cast<uint8_t*>(mem)),
        mask_(reinterpret_cast<format::RingHeader*>(mem)->capacity - 1),
        enqueue_(*reinterpret_cast<uint64_t*>(base_ + format::kTailOffset)),
        dequeue_(*reinterpret_cast<uint64_t*>(base_ + format::kHeadOffset)) {}

  uint8_t* Slot(uint64_t pos) const { return base_ + format::kSlotsOffset + (pos & mask_) * kStride; }
  static std::atomic_ref<uint64_t> Seq(uint8_t* slot) { return std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(slot)); }

  uint8_t* base_;
  uint64_t mask_;
  std::atomic_ref<uint64_t> enqueue_;
  std::atomic_ref<uint64_t> dequeue_;
};

}  // namespace hfe::ring
