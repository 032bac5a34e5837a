// The append path: validate, claim space (helping), write the frame and its CRC, commit, await the verdict.
// No heap allocation and no system call on success, except once per segment when the next one is prepared.
#include <emmintrin.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "ipc/clock.h"
#include "ipc/crc32c.h"
#include "ipc/liveness.h"
#include "store/internal/fault.h"
#include "store/internal/hash.h"
#include "store/internal/log.h"

namespace hfe::store {

using namespace format;

namespace {

uint8_t KindByte(ExpectedVersion::Kind k) {
  switch (k) {
    case ExpectedVersion::Kind::kAny: return kExpectAny;
    case ExpectedVersion::Kind::kNoStream: return kExpectNoStream;
    case ExpectedVersion::Kind::kStreamExists: return kExpectStreamExists;
    case ExpectedVersion::Kind::kExact: return kExpectExact;
  }
  return kExpectAny;
}

std::string Quote(std::string_view s) { return "\"" + std::string(s.substr(0, 200)) + "\""; }

std::atomic_ref<uint64_t> A64(uint64_t& v) { return std::atomic_ref<uint64_t>(v); }

// The stream entry `index` of a frame this process wrote (or the last one, for an index out of range).
const StreamEntry* EntryAt(const uint8_t* f, uint32_t index) {
  const auto* h = reinterpret_cast<const FrameHeader*>(f);
  index = std::min<uint32_t>(index, h->stream_count - 1u);
  uint32_t off = sizeof(FrameHeader);
  for (uint32_t i = 0; i < index; ++i) off += StreamEntrySize(reinterpret_cast<const StreamEntry*>(f + off)->name_length);
  return reinterpret_cast<const StreamEntry*>(f + off);
}
std::string_view EntryName(const StreamEntry* se) {
  return {reinterpret_cast<const char*>(se) + sizeof(StreamEntry), se->name_length};
}

}  // namespace

uint32_t Log::ComputeFrameCrc(uint64_t segment_index, const uint8_t* frame, uint32_t length) const {
  const auto* h = reinterpret_cast<const FrameHeader*>(frame);
  uint32_t crc = crc32c::Extend(0, &segment_index, sizeof segment_index);
  crc = crc32c::Extend(crc, &length, sizeof length);
  crc = crc32c::Extend(crc, frame + kCrcHeaderBegin, sizeof(FrameHeader) - kCrcHeaderBegin);
  crc = crc32c::Extend(crc, frame + sizeof(FrameHeader), h->records_offset - sizeof(FrameHeader));
  uint32_t off = h->records_offset;
  for (uint32_t i = 0; i < h->record_count; ++i) {
    const auto* r = reinterpret_cast<const RecordHeader*>(frame + off);
    uint32_t size = RecordSize(r->payload_length);
    crc = crc32c::Extend(crc, frame + off + kCrcRecordBegin, size - kCrcRecordBegin);
    off += size;
  }
  return crc;
}

namespace {

// The preparer works only where a CPU would otherwise be idle: it never preempts a hot thread. A thread
// inherits its creator's CPU pin and policy; it widens the pin to every online CPU and takes the idle
// scheduling class, so it runs on a CPU nobody else wants (a producer alone, or a parked consumer) and yields
// at once to any runnable thread. A hot thread that needs the mapping lock it holds sleeps on it, freeing its
// CPU, so the lock is released within a chunk.
void BecomeIdleHelper() {
  const long online = ::sysconf(_SC_NPROCESSORS_ONLN);
  cpu_set_t all;
  CPU_ZERO(&all);
  for (long c = 0; c < online && c < CPU_SETSIZE; ++c) CPU_SET(c, &all);
  (void)::sched_setaffinity(0, sizeof all, &all);
  sched_param none{};
  (void)::sched_setscheduler(0, SCHED_IDLE, &none);
}

}  // namespace

void Log::PrepareSegment(uint64_t index, bool for_append) const {
  // Hot path: one relaxed load. The first request for a segment hands it to the preparer thread. Appenders'
  // and readers' requests are kept apart (each as the newest segment asked for plus one; 0: none), so that
  // neither hides the other's.
  std::atomic<uint64_t>& requested = for_append ? prepare_requested_append_ : prepare_requested_read_;
  uint64_t seen = requested.load(std::memory_order_relaxed);
  if (seen > index || !requested.compare_exchange_strong(seen, index + 1, std::memory_order_relaxed)) return;
  {
    std::lock_guard<std::mutex> lock(prepare_mu_);
    uint64_t& wanted = for_append ? prepare_append_wanted_ : prepare_read_wanted_;
    wanted = std::max(wanted, index + 1);
    if (!prepare_thread_.joinable()) {
      prepare_thread_ = std::thread([this] {
        BecomeIdleHelper();
        std::unique_lock<std::mutex> lock(prepare_mu_);
        uint64_t append_done = 0, read_done = 0;
        for (;;) {
          prepare_cv_.wait(lock, [&] {
            return stop_prepare_ || prepare_append_wanted_ > append_done || prepare_read_wanted_ > read_done;
          });
          if (stop_prepare_) return;
          const bool append = prepare_append_wanted_ > append_done;  // appenders first
          const uint64_t want = (append ? prepare_append_wanted_ : prepare_read_wanted_) - 1;
          (append ? append_done : read_done) = want + 1;
          lock.unlock();
          // An appender's segment is created unless the tail has left it already (retention may even have
          // retired it meanwhile: this thread can wait long for a CPU); a reader's is only mapped.
          const bool wanted_still = !append || (want + 1) * seg_size_ > tail();
          if (wanted_still && Segment(want, /*create=*/append)) {
            if (append) {
              std::atomic_ref<uint64_t> prepared(ctl_->prepared_segment);
              uint64_t p = prepared.load(std::memory_order_relaxed);
              while (p < want && !prepared.compare_exchange_weak(p, want, std::memory_order_relaxed)) {
              }
              // Only an appender's segment is warmed: its stores are what a fault delays. A reader's loads
              // fault too, but a reader that keeps up has time to spare.
              TouchSegment(want);
            }
          }
          lock.lock();
        }
      });
    }
  }
  prepare_cv_.notify_one();
}

void Log::TouchSegment(uint64_t index) const {
#if defined(__SANITIZE_THREAD__)
  // A touch racing an appender that reached the segment early is harmless on the hardware (an atomic add of
  // zero), but the race detector cannot know it: its builds go without the warm-up.
  (void)index;
#else
  // MAP_POPULATE allocates the pages, but the first store of each page through this process's
  // mapping still costs a fault, or a trap to the hypervisor under shadow paging (about 5 us a page). This
  // thread takes those on the hot threads' behalf, 16 pages at a time under the mapping lock, so that
  // retention cannot unmap the segment under it. Pages within 4 MiB of the tail, or behind it, are left
  // alone: the touch stays clear of frames being written (an atomic add of zero could not lose their
  // stores, but it would contend for their cache lines).
  constexpr uint64_t kPage = 4096, kChunk = 16 * kPage, kMargin = 4ull << 20;
  for (uint64_t off = 0; off < seg_size_; off += kChunk) {
    if (stop_prepare_flag_.load(std::memory_order_relaxed)) return;
    if (tail() + kMargin > index * seg_size_ + off) continue;
    std::lock_guard<std::mutex> lock(map_mu_);
    auto it = mapped_.find(index);
    if (it == mapped_.end()) return;
    uint8_t* base = it->second.node->base;
    for (uint64_t p = off; p < off + kChunk && p < seg_size_; p += kPage) {
      std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(base + p)).fetch_add(0, std::memory_order_relaxed);
    }
  }
#endif
}

Result<uint64_t> Log::Claim(uint32_t length, uint8_t** frame_out) {
  std::atomic_ref<uint64_t> tail_ref(ctl_->tail);
  const uint32_t pid = static_cast<uint32_t>(liveness::TokenPid(liveness::SelfToken()));
  for (;;) {
    // Acquire: pairs with the tail CAS of whoever claimed before; their state word is then visible.
    uint64_t t = tail_ref.load(std::memory_order_acquire);
    uint64_t seg = t / seg_size_;
    uint64_t off = t % seg_size_;
    auto mapped = MapSegment(seg, /*create=*/true);
    if (!mapped.ok()) {
      return Status(mapped.status().code(), "cannot append to '" + dir_ + "': " + mapped.status().message() +
                                                "; nothing was written");
    }
    uint8_t* base = *mapped;
    uint8_t* f = base + off;
    auto state = StateAt(f);
    uint64_t s = state.load(std::memory_order_acquire);
    if (s != 0) {
      // Someone claimed at the tail but has not moved it yet: help.
      uint32_t l = StateAbsLength(s);
      if (l < sizeof(FrameHeader) || l % kFrameAlign != 0 || off + l > seg_size_) {
        return DataLoss("frame at the tail (position " + std::to_string(t) + ") has an impossible length " +
                        std::to_string(l) + "; the store is damaged: run `hostfactory verify`");
      }
      uint64_t next = off + l == seg_size_ ? (seg + 1) * seg_size_ + kSegmentHeaderSize : t + l;
      if (off + l == seg_size_) Segment(seg + 1, true);
      tail_ref.compare_exchange_strong(t, next, std::memory_order_acq_rel, std::memory_order_relaxed);
      continue;
    }
    if (off + length > seg_size_) {
      // Does not fit: pad to the segment's end and continue in the next segment.
      uint64_t expected = 0;
      uint32_t pad = static_cast<uint32_t>(seg_size_ - off);
      if (state.compare_exchange_strong(expected, MakeCommitted(kTypePad, pad), std::memory_order_acq_rel)) {
        Segment(seg + 1, true);
        tail_ref.compare_exchange_strong(t, (seg + 1) * seg_size_ + kSegmentHeaderSize, std::memory_order_acq_rel,
                                         std::memory_order_relaxed);
      }
      continue;
    }
    uint64_t expected = 0;
    // The claim: a CAS of the state word from free to in-progress with our length and pid.
    if (state.compare_exchange_strong(expected, MakeInProgress(pid, length), std::memory_order_acq_rel)) {
      uint64_t next = off + length == seg_size_ ? (seg + 1) * seg_size_ + kSegmentHeaderSize : t + length;
      // A helper may have moved the tail already; the CAS must not overwrite `t`, our claimed position.
      uint64_t expected_tail = t;
      tail_ref.compare_exchange_strong(expected_tail, next, std::memory_order_acq_rel, std::memory_order_relaxed);
      *frame_out = f;
      return t;
    }
  }
}

Result<AppendResult> Log::Append(std::span<const StreamAppend> appends, std::span<uint64_t> positions,
                                 uint16_t record_flags) {
  size_t events = 0;
  for (const StreamAppend& a : appends) events += a.events.size();
  if (!positions.empty() && positions.size() < events) {  // refused before anything is written
    return InvalidArgument("positions span holds " + std::to_string(positions.size()) + " entries, the batch has " +
                           std::to_string(events) + " events");
  }
  auto ticket = Commit(appends, record_flags, /*pipelined=*/false);
  if (!ticket.ok()) return ticket.status();
  // Resolved at once (by this thread, when the role is free): its CRC, computed a moment ago, is trusted.
  return AwaitFrame(*ticket, positions, /*trust_crc=*/true);
}

Result<AppendTicket> Log::Commit(std::span<const StreamAppend> appends, uint16_t record_flags, bool pipelined) {
  // ---- validate and size the frame
  if (appends.empty()) return InvalidArgument("append needs at least one stream; found none");
  if (appends.size() > kMaxStreamsPerFrame) {
    return InvalidArgument("an atomic append takes at most " + std::to_string(kMaxStreamsPerFrame) + " streams, found " +
                           std::to_string(appends.size()));
  }
  uint64_t size = sizeof(FrameHeader);
  uint64_t records = 0;
  for (size_t i = 0; i < appends.size(); ++i) {
    const StreamAppend& a = appends[i];
    HFE_RETURN_IF_ERROR(EventStore::CheckStreamName(a.stream));
    if (a.events.empty()) return InvalidArgument("stream " + Quote(a.stream) + ": no events to append");
    for (size_t j = 0; j < i; ++j) {
      if (appends[j].stream == a.stream) {
        return InvalidArgument("stream " + Quote(a.stream) + " appears twice in one atomic append; merge its events");
      }
    }
    size += StreamEntrySize(static_cast<uint32_t>(a.stream.size()));
    for (const EventData& e : a.events) {
      if (e.id.IsNil()) return InvalidArgument("stream " + Quote(a.stream) + ": an event has the nil id; give each event a unique id");
      if (e.type == 0) return InvalidArgument("stream " + Quote(a.stream) + ": event type 0 is not a type");
      if (e.payload.size() > seg_size_) return InvalidArgument("event payload larger than a segment");
      size += RecordSize(static_cast<uint32_t>(e.payload.size()));
      ++records;
    }
  }
  if (records > kMaxRecordsPerFrame) {
    return InvalidArgument("an atomic append takes at most " + std::to_string(kMaxRecordsPerFrame) + " events, found " +
                           std::to_string(records));
  }
  size = AlignUp(size, kFrameAlign);
  if (size > seg_size_ - kSegmentHeaderSize) {
    return InvalidArgument("batch of " + std::to_string(size) + " bytes does not fit in a segment of " +
                           std::to_string(seg_size_) + " bytes; split it or use larger segments");
  }
  // Ids must be distinct within the batch (they are checked against the log by the resolver).
  if (records > 1) {
    std::array<EventId, 32> small;
    std::vector<EventId> large;
    std::span<EventId> ids;
    if (records <= small.size()) {
      ids = std::span<EventId>(small.data(), records);
    } else {
      large.resize(records);
      ids = large;
    }
    size_t n = 0;
    for (const StreamAppend& a : appends) {
      for (const EventData& e : a.events) ids[n++] = e.id;
    }
    std::sort(ids.begin(), ids.end(), [](const EventId& x, const EventId& y) {
      return x.hi != y.hi ? x.hi < y.hi : x.lo < y.lo;
    });
    for (size_t i = 1; i < n; ++i) {
      if (ids[i] == ids[i - 1]) {
        return InvalidArgument("event id " + ids[i].ToString() + " appears twice in one batch; ids must be unique");
      }
    }
  }
  const uint32_t length = static_cast<uint32_t>(size);
  const int64_t now = clock::WallNanos();
  Prefetch(appends);  // overlaps the resolver's table misses with writing the frame

  for (;;) {
    uint8_t* f = nullptr;
    auto claimed = Claim(length, &f);
    if (!claimed.ok()) return claimed.status();
    const uint64_t pos = *claimed;
    internal::Fault(internal::FaultPoint::kAfterClaim);

    // ---- write the frame body
    auto* h = reinterpret_cast<FrameHeader*>(f);
    h->record_count = static_cast<uint16_t>(records);
    h->stream_count = static_cast<uint16_t>(appends.size());
    h->writer_token = liveness::SelfToken();
    uint32_t off = sizeof(FrameHeader);
    for (const StreamAppend& a : appends) {
      auto* se = reinterpret_cast<StreamEntry*>(f + off);
      se->expected_version = a.expected.version;
      se->expected_kind = KindByte(a.expected.kind);
      se->reserved = 0;
      se->name_length = static_cast<uint16_t>(a.stream.size());
      se->event_count = static_cast<uint32_t>(a.events.size());
      std::memcpy(f + off + sizeof(StreamEntry), a.stream.data(), a.stream.size());
      std::memset(f + off + sizeof(StreamEntry) + a.stream.size(), 0, AlignUp(a.stream.size(), 8) - a.stream.size());
      off += StreamEntrySize(static_cast<uint32_t>(a.stream.size()));
    }
    h->records_offset = off;
    for (size_t si = 0; si < appends.size(); ++si) {
      for (const EventData& e : appends[si].events) {
        auto* r = reinterpret_cast<RecordHeader*>(f + off);
        r->version = 0;
        r->prev_position = 0;
        r->event_id_hi = e.id.hi;
        r->event_id_lo = e.id.lo;
        r->event_type = e.type;
        r->stream_index = static_cast<uint16_t>(si);
        r->flags = record_flags;
        r->occurred_at_ns = e.occurred_at_ns != 0 ? e.occurred_at_ns : now;
        r->payload_length = static_cast<uint32_t>(e.payload.size());
        r->frame_offset = off;
        if (!e.payload.empty()) std::memcpy(f + off + sizeof(RecordHeader), e.payload.data(), e.payload.size());
        uint32_t rs = RecordSize(r->payload_length);
        std::memset(f + off + sizeof(RecordHeader) + e.payload.size(), 0, rs - sizeof(RecordHeader) - e.payload.size());
        off += rs;
      }
    }
    h->crc = crc32c::Mask(ComputeFrameCrc(pos / seg_size_, f, length));
    internal::Fault(internal::FaultPoint::kAfterBody);

    // ---- commit: in progress -> data. Failure means the resolver padded our stalled frame: claim again.
    uint64_t expected = MakeInProgress(static_cast<uint32_t>(liveness::TokenPid(h->writer_token)), length);
    // Release: pairs with the resolver's acquire load of the state; the body and CRC are visible with it.
    if (!StateAt(f).compare_exchange_strong(expected, MakeCommitted(kTypeData, length), std::memory_order_acq_rel)) {
      continue;
    }

    internal::Fault(internal::FaultPoint::kAfterCommit);
    // After the commit, so that no lock is ever taken while this frame holds up the log: the preparer
    // warms the rest of this segment, and past its half creates the next one.
    const uint64_t seg = pos / seg_size_;
    PrepareSegment(pos % seg_size_ + length > seg_size_ / 2 ? seg + 1 : seg, /*for_append=*/true);
    if (pipelined) ResolveCommitted();
    return AppendTicket{pos, length, static_cast<uint32_t>(records), ticket_nonce_};
  }
}

void Log::ResolveCommitted() {
  // A pipelined producer resolves what is committed when nobody holds the role, once every 16 of its batches:
  // the lease, the wake-up and the consumers' view of the watermark are paid per run of frames, not per
  // frame. Frames it leaves are resolved by the next batch, a Flush, an Await, or a reader that finds them.
  if ((pipelined_since_resolve_.fetch_add(1, std::memory_order_relaxed) & 15) != 15) return;
  if (A64(ctl_->lease).load(std::memory_order_relaxed) != 0 || !TryAcquireLease(false)) return;
  ResolveLoop(0);
  ReleaseLease();
  WakeWaiters();
}

uint8_t* Log::TicketFrame(const AppendTicket& t) const {
  const uint64_t off = t.position % seg_size_;
  if (t.store != ticket_nonce_ || t.position == kNoPosition || off < kSegmentHeaderSize || off % kFrameAlign != 0 ||
      t.length < sizeof(FrameHeader) ||
      t.length % kFrameAlign != 0 || off + t.length > seg_size_ || t.position / seg_size_ < first_segment() ||
      t.position >= tail()) {
    return nullptr;
  }
  uint8_t* base = Segment(t.position / seg_size_, false);
  if (!base) return nullptr;
  uint8_t* f = base + off;
  const auto* h = reinterpret_cast<const FrameHeader*>(f);
  // Acquire: pairs with the commit; the header is the one its writer committed.
  if (StateAt(f).load(std::memory_order_acquire) != MakeCommitted(kTypeData, t.length) ||
      h->writer_token != liveness::SelfToken() || h->record_count != t.events) {
    return nullptr;
  }
  return f;
}

std::optional<Result<AppendResult>> Log::TryGet(const AppendTicket& t, std::span<uint64_t> positions) {
  if (TicketFrame(t) && resolved() < t.position + t.length) {
    HelpResolve(Help::kCheap);
    if (resolved() < t.position + t.length) return std::nullopt;
  }
  return Await(t, positions);
}

Status Log::Flush() { return WaitResolved(tail()); }

Result<AppendResult> Log::Await(const AppendTicket& t, std::span<uint64_t> positions) {
  // A pipelined batch waits long enough for anyone to change its bytes: its CRC is checked like any other's.
  return AwaitFrame(t, positions, /*trust_crc=*/false);
}

Result<AppendResult> Log::AwaitFrame(const AppendTicket& t, std::span<uint64_t> positions, bool trust_crc) {
  uint8_t* f = TicketFrame(t);
  if (!f) {
    if (t.store == ticket_nonce_ && t.position != kNoPosition && t.position / seg_size_ < first_segment()) {
      return NotFound("the batch at position " + std::to_string(t.position) + " was decided and its segment retired " +
                      "before its verdict was collected; collect verdicts before retention passes them");
    }
    return InvalidArgument("append ticket (position " + std::to_string(t.position) + ", " + std::to_string(t.length) +
                           " bytes) names no batch committed to '" + dir_ + "' by this process since it opened the " +
                           "store; pass a ticket AppendAsync of this EventStore returned");
  }
  const uint64_t pos = t.position;
  const uint32_t length = t.length;
  const uint64_t records = t.events;
  if (!positions.empty() && positions.size() < records) {
    return InvalidArgument("positions span holds " + std::to_string(positions.size()) + " entries, the batch has " +
                           std::to_string(records) + " events (the batch is committed: await its ticket again with " +
                           "a span large enough)");
  }
  {
    HFE_RETURN_IF_ERROR(WaitResolved(pos + length, trust_crc ? pos : kNoPosition));
    if (geo_.sync_policy == kSyncEveryAppend) SyncResolved(pos + length);
    auto* h = reinterpret_cast<FrameHeader*>(f);
    // The result is read from the frame, in shared memory: bounds first.
    if (std::string bad = CheckFrameBounds(f, length); !bad.empty() || h->record_count != records) {
      return DataLoss("the batch at position " + std::to_string(pos) + " was damaged after it was committed (" +
                      (bad.empty() ? std::string("record count changed") : bad) + "); run `hostfactory verify`");
    }

    // ---- the verdict
    // Acquire: pairs with the resolver's release store of the verdict; the record fields it wrote are visible.
    uint32_t v = std::atomic_ref<uint32_t>(h->verdict).load(std::memory_order_acquire);
    auto* first = reinterpret_cast<RecordHeader*>(f + h->records_offset);
    switch (VerdictCode(v)) {
      case kVerdictAccepted:
      case kVerdictDuplicate: {
        AppendResult res;
        res.already_appended = VerdictCode(v) == kVerdictDuplicate;
        uint32_t o = h->records_offset;
        const RecordHeader* last = first;
        for (uint32_t i = 0; i < records; ++i) {
          auto* r = reinterpret_cast<RecordHeader*>(f + o);
          uint64_t p = res.already_appended ? r->prev_position : pos + o;
          if (i == 0) res.first_position = p;
          res.last_position = p;
          if (!positions.empty()) positions[i] = p;
          last = r;
          o += RecordSize(r->payload_length);
        }
        res.last_version = last->version;
        if (res.already_appended) {
          // Ids are global: name the stream that holds the originals, which may not be the one appended to.
          EventView original;
          if (ViewAt(*this, res.first_position, &original)) res.original_stream = original.stream;
        }
        return res;
      }
      case kVerdictConflict: {
        const StreamEntry* se = EntryAt(f, VerdictStream(v));
        uint64_t actual = first->version;
        std::string found = actual == kNoVersion ? "no stream" : "version " + std::to_string(actual);
        std::string want = se->expected_kind == kExpectNoStream       ? "no stream"
                           : se->expected_kind == kExpectStreamExists ? "an existing stream"
                                                                      : "version " + std::to_string(se->expected_version);
        return Status(StatusCode::kWrongExpectedVersion,
                      "stream " + Quote(EntryName(se)) + ": expected " + want + ", found " + found +
                          " (another writer appended first; reload the stream and retry)");
      }
      case kVerdictPartialDuplicate:
        return Status(StatusCode::kDuplicateEvent,
                      "batch of " + std::to_string(records) + " events: some event ids were appended before and some " +
                          "not (expected all new or all already appended); resend the original batch unchanged, or use new ids");
      case kVerdictStreamDeleted: {
        return FailedPrecondition("stream " + Quote(EntryName(EntryAt(f, VerdictStream(v)))) +
                                  " was deleted for good (hard delete); it cannot be written again, use another stream name");
      }
      case kVerdictStreamTableFull:
        return ResourceExhausted("stream table of '" + dir_ + "' is full (" + std::to_string(max_streams_) +
                                 " streams); create the store with a larger stream capacity");
      default:
        return DataLoss("the batch at position " + std::to_string(pos) + " was damaged before it was resolved " +
                        "(shared memory scribbled?); nothing was appended: run `hostfactory verify`");
    }
  }
}

}  // namespace hfe::store
