// Redaction: flag one event redacted, wait out the readers that may be reading it, then zero its payload in
// place and recompute its frame's CRC.
#include <algorithm>
#include <cstring>

#include "ipc/crc32c.h"
#include "store/internal/admin_lock.h"
#include "store/internal/log.h"

namespace hfe::store {

using namespace format;

namespace {

// How long a redaction waits for readers that were inside a read section when it flagged the event.
constexpr int64_t kReaderGraceNs = 5'000'000'000;

}  // namespace

Result<EventStore::RedactResult> Log::Redact(uint64_t position) {
  if (ReadSection::InsideAny()) {
    return FailedPrecondition("redact was called while this thread holds views of the log (inside a visit or a " +
                              std::string("ViewScope) and would wait for itself; call it after the read returns"));
  }
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
  uint8_t* body = reinterpret_cast<uint8_t*>(r) + sizeof(RecordHeader);
  const uint32_t len = StateAbsLength(StateAt(f).load(std::memory_order_acquire));
  auto* h = reinterpret_cast<FrameHeader*>(f);
  std::atomic_ref<uint16_t> flags(r->flags);
  if (flags.load(std::memory_order_acquire) & kRecordRedacted) {
    // Flagged before: done, unless an earlier redaction gave up waiting for a reader before zeroing.
    if (std::all_of(body, body + r->payload_length, [](uint8_t b) { return b == 0; })) {
      result.already_redacted = true;
      return result;
    }
  } else {
    // 1. Flag: from here on every new view shows the event redacted, its body as zeros. Seq_cst: against the
    //    read sections' seq_cst entry and flag loads (Log::EnterRead), so a reader either sees the flag or is
    //    seen by step 2. The CRC is recomputed to cover the flag.
    flags.fetch_or(kRecordRedacted, std::memory_order_seq_cst);
    h->crc = crc32c::Mask(ComputeFrameCrc(position / S, f, len));
  }
  // 2. Readers that entered before the flag may still be reading the body in place: wait them out.
  auto busy = WaitOutReaders(kReaderGraceNs);
  if (!busy.ok()) return busy.status();
  if (*busy != 0) {
    return Status(StatusCode::kUnavailable,
                  "event at position " + std::to_string(position) + " is hidden from readers now, but process " +
                      std::to_string(*busy) + " has been reading the log since before the redaction (" +
                      std::to_string(kReaderGraceNs / 1'000'000'000) + " s) and may hold its body, so its bytes " +
                      "were not zeroed yet: run the redaction again once that reader moved on");
  }
  // 3. Nobody can hold the old body any more: zero it.
  std::memset(body, 0, r->payload_length);
  h->crc = crc32c::Mask(ComputeFrameCrc(position / S, f, len));
  const uint64_t frame_pos = position - r->frame_offset;
  if (geo_.sync_policy != kSyncNone) {
    SyncSegments(frame_pos, frame_pos + len);
    (void)control_file_.Sync(0, kControlHeaderSize);
  }
  ViewAt(*this, position, &result.event);
  return result;
}

}  // namespace hfe::store
