// Ring header checks shared by SpscRing and MpmcRing.
#include <atomic>
#include <string>

#include "ring/spsc_ring.h"

namespace hfe::ring::internal {

void InitHeader(void* mem, uint32_t kind, uint32_t slot_size, uint32_t stride, uint64_t capacity) {
  auto* h = static_cast<format::RingHeader*>(mem);
  h->magic = format::kRingMagic;
  h->kind = kind;
  h->slot_size = slot_size;
  h->slot_stride = stride;
  h->capacity = capacity;
  // Release: pairs with the acquire in CheckHeader(); the whole layout is visible to attachers.
  std::atomic_ref<uint32_t>(h->layout_version).store(format::kRingLayoutVersion, std::memory_order_release);
}

Status CheckHeader(const void* mem, size_t bytes, uint32_t kind, uint32_t slot_size, uint32_t stride) {
  if (bytes < format::kSlotsOffset) {
    return InvalidArgument("ring region of " + std::to_string(bytes) + " bytes is smaller than a ring header");
  }
  auto* h = static_cast<format::RingHeader*>(const_cast<void*>(mem));
  uint32_t version = std::atomic_ref<uint32_t>(h->layout_version).load(std::memory_order_acquire);
  if (version == 0) return Status(StatusCode::kUnavailable, "ring is not published yet; retry once its creator is done");
  if (h->magic != format::kRingMagic) return Incompatible("not an hfevents ring (bad magic)");
  if (version != format::kRingLayoutVersion) {
    return Incompatible("ring layout version " + std::to_string(version) + ", this build reads " +
                        std::to_string(format::kRingLayoutVersion));
  }
  if (h->kind != kind) return Incompatible("ring kind " + std::to_string(h->kind) + ", expected " + std::to_string(kind));
  if (h->slot_size != slot_size || h->slot_stride != stride) {
    return Incompatible("ring slots hold " + std::to_string(h->slot_size) + " bytes, this reader expects " +
                        std::to_string(slot_size));
  }
  if (!ValidCapacity(h->capacity) || (bytes - format::kSlotsOffset) / stride < h->capacity) {
    return DataLoss("ring capacity " + std::to_string(h->capacity) + " does not fit its " + std::to_string(bytes) +
                    "-byte region (scribbled header?)");
  }
  return Status::Ok();
}

}  // namespace hfe::ring::internal
