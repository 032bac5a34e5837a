// Readers: frames are walked in place (zero-copy); everything read from the mapping is bounds-checked first.
#include <algorithm>
#include <deque>
#include <optional>
#include <vector>

#include <emmintrin.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ipc/clock.h"
#include "ipc/crc32c.h"
#include "ipc/futex.h"
#include "ipc/liveness.h"
#include "store/internal/hash.h"
#include "store/internal/log.h"

namespace hfe::store {

using namespace format;

std::string Log::CheckFrameBounds(const uint8_t* f, uint32_t length) const {
  const auto* h = reinterpret_cast<const FrameHeader*>(f);
  if (length < sizeof(FrameHeader) || length % kFrameAlign != 0) return "bad frame length";
  if (h->record_count == 0 || h->stream_count == 0 || h->stream_count > kMaxStreamsPerFrame) return "bad counts";
  uint64_t off = sizeof(FrameHeader);
  uint64_t events_in_streams = 0;
  for (uint32_t si = 0; si < h->stream_count; ++si) {
    if (off + sizeof(StreamEntry) > length) return "stream entry past the frame end";
    const auto* se = reinterpret_cast<const StreamEntry*>(f + off);
    if (se->name_length == 0 || se->name_length > kMaxStreamName) return "bad stream name length";
    off += StreamEntrySize(se->name_length);
    events_in_streams += se->event_count;
  }
  if (off != h->records_offset || off > length) return "records offset does not follow the stream entries";
  if (events_in_streams != h->record_count) return "stream event counts do not add up to the record count";
  for (uint32_t i = 0; i < h->record_count; ++i) {
    if (off + sizeof(RecordHeader) > length) return "record header past the frame end";
    const auto* r = reinterpret_cast<const RecordHeader*>(f + off);
    if (r->stream_index >= h->stream_count) return "record names a stream entry that does not exist";
    if (r->frame_offset != off) return "record's frame offset is wrong";
    if (r->payload_length > length || off + RecordSize(r->payload_length) > length) return "payload past the frame end";
    off += RecordSize(r->payload_length);
  }
  return {};
}

bool Log::CheckFrameCrc(uint64_t pos, const uint8_t* f, uint32_t length) const {
  const auto* h = reinterpret_cast<const FrameHeader*>(f);
  return crc32c::Unmask(h->crc) == ComputeFrameCrc(pos / seg_size_, f, length);
}

// ------------------------------------------------------------------------------------------ read sections
namespace {

// Zero bytes to present a redacted record's body: an anonymous read-only mapping as large as a segment can be
// (the kernel backs it with its one zero page), made once per process.
const uint8_t* ZeroBytes() {
  static const uint8_t* zeros = [] {
    void* p = ::mmap(nullptr, size_t{1} << 30, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? nullptr : static_cast<const uint8_t*>(p);
  }();
  return zeros;
}

inline std::atomic_ref<uint64_t> SectionWord(ReaderSlot* s) { return std::atomic_ref<uint64_t>(s->section); }
inline std::atomic_ref<uint64_t> OwnerWord(ReaderSlot* s) { return std::atomic_ref<uint64_t>(s->owner); }

// Read sections this thread holds, of any store: Redact refuses to run inside one (it would wait for itself).
thread_local int t_sections = 0;

// True when the slot holding `section` belongs to a process that is gone. The owner word is written just
// after the section word: while it does not name the section's pid yet, the owner counts as alive.
bool OwnerDead(ReaderSlot* s, uint64_t section) {
  const uint64_t owner = OwnerWord(s).load(std::memory_order_acquire);
  return liveness::TokenPid(owner) == static_cast<pid_t>(SectionPid(section)) && !liveness::IsAlive(owner);
}

}  // namespace

ReadSection::ReadSection(const Log& log) : log_(log), slot_(log.EnterRead()) {}
ReadSection::~ReadSection() { log_.LeaveRead(slot_); }
void ReadSection::Renew() {
  log_.LeaveRead(slot_);
  slot_ = log_.EnterRead();
}
bool ReadSection::InsideAny() { return t_sections > 0; }

ReaderSlot* Log::EnterRead() const {
  thread_local uint64_t hint = static_cast<uint64_t>(::gettid()) * 0x9e3779b97f4a7c15ull;
  thread_local uint32_t generation = 0;
  if (++generation == 0) generation = 1;
  const uint64_t self = liveness::SelfToken();
  const uint64_t mine = MakeSection(generation, static_cast<uint32_t>(liveness::TokenPid(self)));
  const uint64_t n = geo_.reader_slots;
  for (uint32_t round = 0;; ++round) {
    for (uint64_t k = 0; k < n; ++k) {
      ReaderSlot* s = &readers_[(hint + k) % n];
      uint64_t seen = SectionWord(s).load(std::memory_order_relaxed);
      // Every slot held: take back one whose owner died inside its section (liveness costs a /proc read).
      if (seen != 0 && !(round > 0 && OwnerDead(s, seen))) continue;
      // Seq_cst: ordered before this section's loads of record flags (MakeView), against the redactor's
      // seq_cst flag store and its loads of the slots: either we see the flag, or it sees this section.
      if (SectionWord(s).compare_exchange_strong(seen, mine, std::memory_order_seq_cst, std::memory_order_relaxed)) {
        OwnerWord(s).store(self, std::memory_order_release);
        hint = (hint + k) % n;
        ++t_sections;
        return s;
      }
    }
    if (round > 0) sched_yield();  // as many live sections as slots: wait for one to end
  }
}

void Log::LeaveRead(ReaderSlot* slot) const {
  --t_sections;
  // Release: pairs with the redactor's acquire load; every read of this section happened before it zeroes.
  SectionWord(slot).store(0, std::memory_order_release);
}

Result<uint32_t> Log::WaitOutReaders(int64_t timeout_ns) const {
  // Sections held now: each is over once its slot holds another word (freed, or a later section) or its
  // owner is gone. A section that starts from now on sees the flag the caller stored before.
  const uint64_t n = geo_.reader_slots;
  std::vector<std::pair<uint64_t, uint64_t>> held;  // slot index, section word
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t w = SectionWord(&readers_[i]).load(std::memory_order_seq_cst);
    if (w != 0) held.emplace_back(i, w);
  }
  const int64_t start = clock::MonotonicNanos();
  int64_t next_liveness = start;
  for (uint32_t sleep_us = 50;; sleep_us = std::min(sleep_us * 2, 2000u)) {
    const int64_t now = clock::MonotonicNanos();
    const bool check_liveness = now >= next_liveness;  // a /proc read per held slot: every 10 ms at most
    if (check_liveness) next_liveness = now + 10'000'000;
    std::erase_if(held, [&](const std::pair<uint64_t, uint64_t>& h) {
      // Acquire: pairs with LeaveRead's release (directly, or through the next section's CAS).
      return SectionWord(&readers_[h.first]).load(std::memory_order_acquire) != h.second ||
             (check_liveness && OwnerDead(&readers_[h.first], h.second));
    });
    if (held.empty()) return uint32_t{0};
    if (now - start > timeout_ns) return SectionPid(held.front().second);
    ::usleep(sleep_us);
  }
}

namespace {

// Fills a view of the record at `rec` within the checked frame `f` at position `frame_pos`.
void MakeView(const uint8_t* f, uint64_t frame_pos, uint32_t rec_off, EventView* v) {
  const auto* r = reinterpret_cast<const RecordHeader*>(f + rec_off);
  const auto* h = reinterpret_cast<const FrameHeader*>(f);
  uint32_t soff = sizeof(FrameHeader);
  for (uint32_t si = 0; si < h->stream_count; ++si) {
    const auto* se = reinterpret_cast<const StreamEntry*>(f + soff);
    if (si == r->stream_index) {
      v->stream = std::string_view(reinterpret_cast<const char*>(f + soff + sizeof(StreamEntry)), se->name_length);
      break;
    }
    soff += StreamEntrySize(se->name_length);
  }
  v->position = frame_pos + rec_off;
  v->version = r->version;
  v->prev_position = r->prev_position;
  v->type = r->event_type;
  v->id = EventId{r->event_id_hi, r->event_id_lo};
  v->occurred_at_ns = r->occurred_at_ns;
  // Seq_cst: against the redactor's flag store (see Log::EnterRead). A flagged record's body is shown as zeros
  // whether or not its bytes were zeroed yet, so no view mixes the old body with zeros.
  v->redacted = (std::atomic_ref<uint16_t>(const_cast<uint16_t&>(r->flags)).load(std::memory_order_seq_cst) &
                 kRecordRedacted) != 0;
  if (!v->redacted) {
    v->payload = std::span<const uint8_t>(f + rec_off + sizeof(RecordHeader), r->payload_length);
  } else if (const uint8_t* zeros = ZeroBytes()) {
    v->payload = std::span<const uint8_t>(zeros, r->payload_length);
  } else {
    v->payload = {};  // no zero mapping to point at: no body at all, never the bytes being zeroed
  }
}

Status Damaged(const std::string& dir, uint64_t pos, const std::string& what) {
  return DataLoss("store '" + dir + "' is damaged at position " + std::to_string(pos) + ": " + what +
                  " (run `hostfactory verify`; reopen alone to recover the tail)");
}

}  // namespace

Result<uint64_t> Log::FrameStartAtOrAfter(uint64_t from) const {
  // Returns the start of the frame that contains `from`, or the next frame start.
  uint64_t first = std::atomic_ref<uint64_t>(ctl_->first_segment).load(std::memory_order_relaxed) * seg_size_ +
                   kSegmentHeaderSize;
  if (from <= first) return first;
  uint64_t end = resolved();
  if (from >= end) return end;
  uint64_t seg = from / seg_size_;
  uint64_t pos = seg * seg_size_ + kSegmentHeaderSize;
  uint8_t* base = Segment(seg, false);
  if (!base) return seg < first_segment() ? first_segment() * seg_size_ + kSegmentHeaderSize
                                          : Result<uint64_t>(Damaged(dir_, pos, "segment missing"));
  while (pos < end && pos / seg_size_ == seg) {
    uint64_t s = StateAt(base + pos % seg_size_).load(std::memory_order_acquire);
    uint32_t len = StateAbsLength(s);
    if (s == 0 || len < sizeof(FrameHeader) || len % kFrameAlign || pos % seg_size_ + len > seg_size_) {
      return Damaged(dir_, pos, "bad frame length");
    }
    if (pos + len > from) return pos;
    pos += len;
  }
  if (pos % seg_size_ == 0) pos += kSegmentHeaderSize;
  return pos;
}

Status Log::Scan(uint64_t from, const EventStore::Visitor& visit, bool check_crc) const {
  const_cast<Log*>(this)->HelpResolve();
  ReadSection section(*this);
  uint64_t visits = 0;
  auto start = FrameStartAtOrAfter(from);
  if (!start.ok()) return start.status();
  uint64_t pos = *start;
  uint64_t end = resolved();
  EventView v;
  while (pos < end) {
    if (pos % seg_size_ == 0) pos += kSegmentHeaderSize;
    if (pos >= end) break;
    uint8_t* base = Segment(pos / seg_size_, false);
    if (!base) {
      // Retired while this scan ran: continue at the oldest segment left.
      const uint64_t first = std::atomic_ref<uint64_t>(ctl_->first_segment).load(std::memory_order_acquire);
      if (pos / seg_size_ < first) {
        pos = first * seg_size_ + kSegmentHeaderSize;
        continue;
      }
      return Damaged(dir_, pos, "segment missing");
    }
    uint8_t* f = base + pos % seg_size_;
    uint64_t s = StateAt(f).load(std::memory_order_acquire);
    uint32_t len = StateAbsLength(s);
    if (s == 0 || StateInProgress(s) || len < sizeof(FrameHeader) || len % kFrameAlign ||
        pos % seg_size_ + len > seg_size_) {
      return Damaged(dir_, pos, "bad frame state below the resolved watermark");
    }
    if (StateTag(s) == kTypeData) {
      // Acquire: pairs with the resolver's release of the verdict; record versions are visible.
      uint32_t verdict = std::atomic_ref<uint32_t>(reinterpret_cast<FrameHeader*>(f)->verdict).load(std::memory_order_acquire);
      if (VerdictCode(verdict) == kVerdictAccepted) {
        std::string bad = CheckFrameBounds(f, len);
        if (!bad.empty()) return Damaged(dir_, pos, bad);
        if (check_crc && !CheckFrameCrc(pos, f, len)) return Damaged(dir_, pos, "CRC mismatch");
        const auto* h = reinterpret_cast<const FrameHeader*>(f);
        uint32_t off = h->records_offset;
        for (uint32_t i = 0; i < h->record_count; ++i) {
          const auto* r = reinterpret_cast<const RecordHeader*>(f + off);
          if (pos + off >= from) {
            MakeView(f, pos, off, &v);
            if (!visit(v)) return Status::Ok();
            // A long scan lets a redaction in between visits (no view of it is in use then).
            if ((++visits & 255) == 0) section.Renew();
          }
          off += RecordSize(r->payload_length);
        }
      }
    }
    pos += len;
  }
  return Status::Ok();
}

Result<size_t> Log::ReadBatch(ReadCursor& c, size_t max, const EventFilter& filter,
                              const EventStore::Visitor& visit) const {
  if (!c.positioned) {
    auto start = FrameStartAtOrAfter(c.from);
    if (!start.ok()) return start.status();
    c.frame = *start;
    c.positioned = true;
  }
  uint64_t end = resolved();
  if (end <= c.frame && (++c.idle_polls & 63) == 0 && end < tail()) {
    // Nothing new is resolved though frames are claimed. Normally an appender is resolving them (its own
    // frame, or a pipelined producer's run of frames), and a poller that reached for the lease, the tail and
    // the clock on every call would only steal its cache lines, or its work: every 64th idle poll looks at
    // the clock, and helps only once the watermark has not moved for 50 us (cheaply), or for a millisecond
    // (as one who suspects a dead writer or resolver).
    int64_t now = clock::MonotonicNanos();
    if (c.stall_at != end) {
      c.stall_at = end;
      c.stall_since = now;
    } else if (now - c.stall_since > 50'000) {
      const_cast<Log*>(this)->HelpResolve(now - c.stall_since > 1'000'000 ? Help::kUnblock : Help::kCheap);
      end = resolved();
    }
  }
  size_t n = 0;
  EventView v;
  std::optional<ReadSection> section;  // only when there is something to read: idle polls stay cheap
  if (c.frame < end && max > 0) section.emplace(*this);
  while (c.frame < end && n < max) {
    if (c.frame % seg_size_ == 0) c.frame += kSegmentHeaderSize;
    if (c.frame >= end) break;
    uint8_t* base = Segment(c.frame / seg_size_, false);
    if (!base) {
      const uint64_t first = first_segment();
      if (c.frame / seg_size_ < first) {  // retired under this cursor: go on at the oldest segment left
        c.frame = first * seg_size_ + kSegmentHeaderSize;
        continue;
      }
      return Damaged(dir_, c.frame, "segment missing");
    }
    // Past half of a segment, the preparer thread maps the next one, so that this path never waits for a
    // mapping (one relaxed load here once asked).
    if (c.frame % seg_size_ > seg_size_ / 2) PrepareSegment(c.frame / seg_size_ + 1, /*for_append=*/false);
    uint8_t* f = base + c.frame % seg_size_;
    uint64_t s = StateAt(f).load(std::memory_order_acquire);
    uint32_t len = StateAbsLength(s);
    if (s == 0 || StateInProgress(s) || len < sizeof(FrameHeader) || len % kFrameAlign ||
        c.frame % seg_size_ + len > seg_size_) {
      return Damaged(dir_, c.frame, "bad frame state below the resolved watermark");
    }
    if (StateTag(s) == kTypeData) {
      // Acquire: pairs with the resolver's release of the verdict; record versions are visible.
      uint32_t verdict =
          std::atomic_ref<uint32_t>(reinterpret_cast<FrameHeader*>(f)->verdict).load(std::memory_order_acquire);
      if (VerdictCode(verdict) == kVerdictAccepted) {
        std::string bad = CheckFrameBounds(f, len);
        if (!bad.empty()) return Damaged(dir_, c.frame, bad);
        const auto* h = reinterpret_cast<const FrameHeader*>(f);
        uint32_t off = h->records_offset;
        for (uint32_t i = 0; i < h->record_count; ++i) {
          const auto* r = reinterpret_cast<const RecordHeader*>(f + off);
          uint64_t rp = c.frame + off;
          off += RecordSize(r->payload_length);
          if (rp < c.from) continue;
          if (n == max) return n;  // the rest of this frame next time
          MakeView(f, c.frame, static_cast<uint32_t>(rp - c.frame), &v);
          if (filter.Matches(v.type, v.stream)) {
            if (!visit(v)) return n;
            ++n;
          }
          c.from = rp + 1;
        }
      }
    }
    c.frame += len;
    if (c.from < c.frame) c.from = c.frame;
  }
  return n;
}

Result<uint64_t> Log::PositionAtTime(int64_t since) const {
  uint64_t found = resolved();
  Status s = ReadSince(since, [&](const EventView& e) {
    found = e.position;
    return false;
  });
  if (!s.ok()) return s;
  return found;
}

void Log::WaitForResolved(uint64_t position, int strategy, int64_t timeout_ns) const {
  const int64_t deadline = clock::MonotonicNanos() + timeout_ns;
  std::atomic_ref<uint64_t> res(ctl_->resolved);
  uint32_t spins = 0;
  for (;;) {
    uint64_t r = res.load(std::memory_order_acquire);
    if (r > position) return;
    if (strategy == 2) {
      // Park: announce ourselves, re-check, sleep on the watermark's low half (woken by PublishResolved's
      // caller when it sees waiters), at most until the deadline.
      int64_t left = deadline - clock::MonotonicNanos();
      if (left <= 0) return;
      std::atomic_ref<uint32_t> waiters(ctl_->waiters);
      waiters.fetch_add(1, std::memory_order_seq_cst);
      if (res.load(std::memory_order_seq_cst) <= position) {
        futex::Wait(reinterpret_cast<std::atomic<uint32_t>*>(&ctl_->resolved), static_cast<uint32_t>(r),
                    std::min<int64_t>(left, 100'000'000));
      }
      waiters.fetch_sub(1, std::memory_order_relaxed);
      if (res.load(std::memory_order_acquire) <= position && resolved() < tail()) {
        const_cast<Log*>(this)->HelpResolve(clock::MonotonicNanos() - (deadline - timeout_ns) > 1'000'000 ? Help::kUnblock
                                                                                                     : Help::kCheap);
      }
      continue;
    }
    if (strategy == 1) sched_yield();
    else _mm_pause();
    if ((++spins & 1023) == 0) {
      int64_t now = clock::MonotonicNanos();
      if (now >= deadline) return;
      if (resolved() < tail()) {
        const_cast<Log*>(this)->HelpResolve(now - (deadline - timeout_ns) > 1'000'000 ? Help::kUnblock : Help::kCheap);
      }
    }
  }
}

// Locates and checks the record at `pos`: its frame must be a sane DATA frame whose verdict is Accepted.
// The verdict, not the watermark, decides: positions come from the stream table and the dedup index, which
// the resolver updates after it release-stored the verdict and before it publishes the watermark, so a
// position read from them may lie just past the watermark. A verdict, once written, is final (a redo
// re-applies it, never re-decides).
bool ViewAt(const Log& log, uint64_t pos, EventView* v) {
  const uint64_t S = log.segment_size();
  if (pos >= log.tail() || pos % S < kSegmentHeaderSize + sizeof(FrameHeader)) return false;
  if (pos / S < log.first_segment()) return false;  // retired
  uint8_t* base = log.Segment(pos / S, false);
  if (!base || pos % S + sizeof(RecordHeader) > S) return false;
  const auto* r = reinterpret_cast<const RecordHeader*>(base + pos % S);
  if (r->frame_offset > pos % S - kSegmentHeaderSize || (pos % S - r->frame_offset) % kFrameAlign != 0) return false;
  uint8_t* f = base + pos % S - r->frame_offset;
  uint64_t s = log.StateAt(f).load(std::memory_order_acquire);
  uint32_t len = StateAbsLength(s);
  if (StateTag(s) != kTypeData || StateInProgress(s) || (f - base) + uint64_t{len} > S) return false;
  uint32_t verdict = std::atomic_ref<uint32_t>(reinterpret_cast<FrameHeader*>(f)->verdict).load(std::memory_order_acquire);
  if (VerdictCode(verdict) != kVerdictAccepted || !log.CheckFrameBounds(f, len).empty()) return false;
  // The record must be one of the frame's records, not bytes that merely look like one.
  const auto* h = reinterpret_cast<const FrameHeader*>(f);
  uint32_t off = h->records_offset;
  bool found = false;
  for (uint32_t i = 0; i < h->record_count && !found; ++i) {
    found = off == r->frame_offset;
    off += RecordSize(reinterpret_cast<const RecordHeader*>(f + off)->payload_length);
  }
  if (!found) return false;
  MakeView(f, pos - r->frame_offset, r->frame_offset, v);
  return true;
}

StreamInfo Log::GetStream(std::string_view stream) const {
  internal::Hash128 h = internal::HashStream(stream);
  StreamSlot* slot = FindStream(h.lo, h.hi);
  StreamInfo info;
  if (!slot) return info;
  info.last_position = std::atomic_ref<uint64_t>(slot->last_position).load(std::memory_order_acquire);
  // Acquire: pairs with the resolver's release stores in ApplyFrame() (the version, the tombstone bit).
  const uint64_t word = std::atomic_ref<uint64_t>(slot->next_version).load(std::memory_order_acquire);
  info.next_version = SlotVersion(word);
  info.hard_deleted = (word & kStreamDeleted) != 0;
  info.exists = info.next_version > 0;  // a slot with no events holds only a tombstone
  if (!info.exists) info.last_position = 0;
  return info;
}

Status Log::ReadStream(std::string_view stream, uint64_t from_version, const EventStore::Visitor& visit) const {
  const_cast<Log*>(this)->HelpResolve();
  StreamInfo info = GetStream(stream);
  if (!info.exists || info.next_version == 0) return Status::Ok();
  // Walk the stream's chain backwards to from_version, then deliver forwards.
  std::vector<uint64_t> chain;
  uint64_t pos = info.last_position;
  EventView v;
  uint64_t expect = kNoVersion;
  const uint64_t retained = first_segment() * seg_size_;
  while (pos != kNoPosition) {
    if (pos < retained) break;  // the stream's older events were retired
    if (!ViewAt(*this, pos, &v)) return Damaged(dir_, pos, "stream chain points at no accepted record");
    if (v.stream != stream) return Damaged(dir_, pos, "stream chain crosses into another stream");
    if (expect != kNoVersion && v.version != expect) return Damaged(dir_, pos, "stream versions out of order");
    if (v.version < from_version) break;
    chain.push_back(pos);
    if (v.version == 0) break;
    expect = v.version - 1;
    pos = v.prev_position;
    if (chain.size() > (1ull << 32)) return Damaged(dir_, pos, "stream chain loops");
  }
  ReadSection section(*this);
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    if (!ViewAt(*this, *it, &v)) return Damaged(dir_, *it, "record vanished");
    if (!visit(v)) break;
  }
  return Status::Ok();
}

Status Log::ReadSince(int64_t since, const EventStore::Visitor& visit) const {
  const_cast<Log*>(this)->HelpResolve();
  const uint64_t first = std::atomic_ref<uint64_t>(ctl_->first_segment).load(std::memory_order_relaxed);
  const uint64_t last = resolved() / seg_size_;
  for (uint64_t seg = first; seg <= last; ++seg) {
    const TimeIndexSlot& ts = time_index_[seg % geo_.time_index_slots];
    // A segment whose newest event is older than `since` is skipped; an unindexed one is scanned.
    if (ts.segment_plus_one == seg + 1 && ts.max_occurred_at_ns < since && seg != last) continue;
    return Scan(seg * seg_size_, [&](const EventView& e) { return e.occurred_at_ns < since || visit(e); });
  }
  return Status::Ok();
}

Status Log::ReadLast(uint64_t n, const EventStore::Visitor& visit) const {
  const_cast<Log*>(this)->HelpResolve();
  if (n == 0) return Status::Ok();
  const uint64_t first = std::atomic_ref<uint64_t>(ctl_->first_segment).load(std::memory_order_relaxed);
  std::deque<uint64_t> newest;
  for (uint64_t seg = resolved() / seg_size_ + 1; seg-- > first && newest.size() < n;) {
    std::vector<uint64_t> in_segment;
    HFE_RETURN_IF_ERROR(Scan(seg * seg_size_, [&](const EventView& e) {
      if (e.position / seg_size_ != seg) return false;
      in_segment.push_back(e.position);
      return true;
    }));
    newest.insert(newest.begin(), in_segment.begin(), in_segment.end());
  }
  while (newest.size() > n) newest.pop_front();
  EventView v;
  ReadSection section(*this);
  for (uint64_t pos : newest) {
    if (!ViewAt(*this, pos, &v)) return Damaged(dir_, pos, "record vanished");
    if (!visit(v)) break;
  }
  return Status::Ok();
}

}  // namespace hfe::store
