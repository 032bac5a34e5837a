// SpscRing<T>: a bounded single-producer / single-consumer ring in shared memory (works across processes).
//
// Thread safety / invariants
// - Exactly one producer (TryPush*) and one consumer (TryPop*) at a time, in any processes.
// - tail (producer's) and head (consumer's) are 64-bit sequences: 0 <= tail - head <= capacity.
// - The producer owns tail (relaxed loads of its own index), reads head with acquire and publishes with a
//   release store of tail; the consumer mirrors it. Each side caches the other's index and re-reads it only
//   when the cached value says full (producer) or empty (consumer).
// - The memory is untrusted: Attach() validates the header, and every slot index is masked into range, so a
//   scribbled index gives wrong data, never an out-of-bounds access.
#pragma once

#include <cstring>
#include <span>
#include <string>
#include <type_traits>

#include "ipc/status.h"
#include "ring/ring_format.h"

namespace hfe::ring {

namespace internal {
Status CheckHeader(const void* mem, size_t bytes, uint32_t kind, uint32_t slot_size, uint32_t stride);
void InitHeader(void* mem, uint32_t kind, uint32_t slot_size, uint32_t stride, uint64_t capacity);
inline bool ValidCapacity(uint64_t c) { return c >= 2 && c <= format::kMaxCapacity && (c & (c - 1)) == 0; }
}  // namespace internal

template <typename T>
class SpscRing {
  static_assert(std::is_trivially_copyable_v<T>, "ring slots are copied as bytes between processes");

 public:
  static constexpr uint32_t kStride = static_cast<uint32_t>(sizeof(T));

  static size_t BytesFor(uint64_t capacity) { return format::kSlotsOffset + capacity * kStride; }

  // Lays a new ring out in `mem` (zeroed or not) and publishes it.
  static Result<SpscRing> Create(void* mem, size_t bytes, uint64_t capacity) {
    if (!internal::ValidCapacity(capacity)) {
      return InvalidArgument("ring capacity must be a power of two from 2 to 2^32, found " + std::to_string(capacity));
    }
    if (bytes < BytesFor(capacity)) {
      return InvalidArgument("ring of " + std::to_string(capacity) + " slots needs " + std::to_string(BytesFor(capacity)) +
                             " bytes, found " + std::to_string(bytes));
    }
    std::memset(static_cast<uint8_t*>(mem) + format::kTailOffset, 0, format::kSlotsOffset - format::kTailOffset);
    internal::InitHeader(mem, format::kKindSpsc, sizeof(T), kStride, capacity);
    return SpscRing(mem);
  }

  // Attaches to a ring another process created; refuses a foreign, unpublished or mismatched one.
  static Result<SpscRing> Attach(void* mem, size_t bytes) {
    HFE_RETURN_IF_ERROR(internal::CheckHeader(mem, bytes, format::kKindSpsc, sizeof(T), kStride));
    return SpscRing(mem);
  }

  uint64_t capacity() const { return mask_ + 1; }

  bool TryPush(const T& v) { return TryPushBatch(std::span<const T>(&v, 1)) == 1; }
  bool TryPop(T* out) { return TryPopBatch(std::span<T>(out, 1)) == 1; }

  // Pushes as many of `items` as fit, in order; returns how many.
  size_t TryPushBatch(std::span<const T> items) {
    const uint64_t tail = tail_.load(std::memory_order_relaxed);  // own index
    uint64_t used = tail - cached_head_;
    if (used > capacity() || capacity() - used < items.size()) {
      // Acquire: pairs with the consumer's release of head; the slots it freed may be overwritten.
      cached_head_ = head_.load(std::memory_order_acquire);
      used = tail - cached_head_;
      if (used > capacity()) return 0;  // scribbled indices: refuse rather than overwrite unread slots
    }
    const uint64_t free = capacity() - used;
    size_t n = items.size() < free ? items.size() : static_cast<size_t>(free);
    for (size_t i = 0; i < n; ++i) std::memcpy(Slot(tail + i), &items[i], sizeof(T));
    // Release: pairs with the consumer's acquire of tail; the slots written above are visible with it.
    tail_.store(tail + n, std::memory_order_release);
    return n;
  }

  // Pops up to out.size() items, in order; returns how many.
  size_t TryPopBatch(std::span<T> out) {
    const uint64_t head = head_.load(std::memory_order_relaxed);  // own index
    uint64_t avail = cached_tail_ - head;
    if (avail > capacity() || avail < out.size()) {
      // Acquire: pairs with the producer's release of tail; the slots it filled are visible.
      cached_tail_ = tail_.load(std::memory_order_acquire);
      avail = cached_tail_ - head;
      if (avail > capacity()) return 0;  // scribbled indices: refuse rather than read garbage
    }
    size_t n = out.size() < avail ? out.size() : static_cast<size_t>(avail);
    for (size_t i = 0; i < n; ++i) std::memcpy(&out[i], Slot(head + i), sizeof(T));
    // Release: pairs with the producer's acquire of head; it may reuse these slots now.
    head_.store(head + n, std::memory_order_release);
    return n;
  }

  // Copies the oldest item without taking it (the consumer's side); false when the ring is empty. With
  // Consume() after the item was dealt with, a consumer that dies in between leaves the item for the next.
  bool TryPeek(T* out) {
    const uint64_t head = head_.load(std::memory_order_relaxed);  // own index
    if (cached_tail_ - head == 0 || cached_tail_ - head > capacity()) {
      // Acquire: pairs with the producer's release of tail; the slot it filled is visible.
      cached_tail_ = tail_.load(std::memory_order_acquire);
      const uint64_t avail = cached_tail_ - head;
      if (avail == 0 || avail > capacity()) return false;  // empty, or scribbled indices
    }
    std::memcpy(out, Slot(head), sizeof(T));
    return true;
  }
  // Takes the item TryPeek() returned.
  void Consume() {
    // Release: pairs with the producer's acquire of head; it may reuse the slot now.
    head_.store(head_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  }

  // Items waiting (a snapshot; exact only when both sides are idle).
  uint64_t Size() const {
    return tail_.load(std::memory_order_acquire) - head_.load(std::memory_order_acquire);
  }

 private:
  explicit SpscRing(void* mem)
      : base_(static_cast<uint8_t*>(mem)),
        mask_(reinterpret_cast<format::RingHeader*>(mem)->capacity - 1),
        tail_(*reinterpret_cast<uint64_t*>(base_ + format::kTailOffset)),
        head_(*reinterpret_cast<uint64_t*>(base_ + format::kHeadOffset)),
        cached_head_(head_.load(std::memory_order_acquire)),
        cached_tail_(tail_.load(std::memory_order_acquire)) {}

  uint8_t* Slot(uint64_t seq) const { return base_ + format::kSlotsOffset + (seq & mask_) * kStride; }

  uint8_t* base_;
  uint64_t mask_;
  std::atomic_ref<uint64_t> tail_;
  std::atomic_ref<uint64_t> head_;
  uint64_t cached_head_;  // producer's view of head
  uint64_t cached_tail_;  // consumer's view of tail
};

}  // namespace hfe::ring
