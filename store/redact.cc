// Redaction: zero one event's payload in place, flag it, recompute its frame's CRC.
#include <cstring>

#include "ipc/crc32c.h"
#include "store/internal/admin_lock.h"
#include "store/internal/log.h"

namespace hfe::store {

using namespace format;

Result<EventStore::RedactResult> Log::Redact(uint64_t position) {
  internal::AdminLock lock(dir_);  // one redaction at a time: two in one frame would race on its CRC
  EventStore::RedactResult result;
  if (!ViewAt(*this, position, &result.event)) {
    return NotFound("no event starts at position " + std::to_string(position) +
                    " (positions are those `hostfactory read` prints)");
  }
  const uint64_t S = seg_size_;
  uint8_t* base = Segment(position / S, false);
  auto* r = reinterpret_cast<RecordHeader*>(base + position % S);
  uint8_t* f = base + position % S - r->frame_offset;
  std::atomic_ref<uint16_t> flags(r->flags);
  if (flags.load(std::memory_order_acquire) & kRecordRedacted) {
    result.already_redacted = true;
    return result;
  }
  const uint32_t len = StateAbsLength(StateAt(f).load(std::memory_order_acquire));
  std::memset(reinterpret_cast<uint8_t*>(r) + sizeof(RecordHeader), 0, r->payload_length);
  // Release: a reader that sees the flag sees the zeroed payload.
  flags.fetch_or(kRecordRedacted, std::memory_order_release);
  auto* h = reinterpret_cast<FrameHeader*>(f);
  h->crc = crc32c::Mask(ComputeFrameCrc(position / S, f, len));
  const uint64_t frame_pos = position - r->frame_offset;
  if (geo_.sync_policy != kSyncNone) SyncResolved(frame_pos, frame_pos + len);
  ViewAt(*this, position, &result.event);
  return result;
}

}  // namespace hfe::store
