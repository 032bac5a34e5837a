// The resolver: decides committed frames in log order against the stream table and the dedup index.
//
// Thread safety / invariants
// - One holder at a time: the `lease` word holds the holder's liveness token (pid | start time). A process
//   that finds the holder dead takes the lease over and redoes the holder's half-done run (Repair).
// - Only the holder writes verdicts, record versions, the stream table, the dedup index and the counters.
// - Frames are resolved in runs (every committed frame up to the first in progress, at most 64). Per run:
//   write the journal (counters and dedup count before the run), journal_frame = the watermark last; then
//   per frame, decide and write the record fields, release-store the verdict, apply tables and counters;
//   at the run's end release-store the watermark and wake waiters. A redo restores the counters from the
//   journal, rebuilds the dedup hash from its ring and re-applies every frame of the run that has a verdict,
//   in order, from the verdicts already written, so nothing is decided twice.
#include <emmintrin.h>
#include <sched.h>

#include <algorithm>
#include <cstring>

#include "ipc/clock.h"
#include "ipc/crc32c.h"
#include "ipc/futex.h"
#include "ipc/liveness.h"
#include "store/internal/fault.h"
#include "store/internal/hash.h"
#include "store/internal/log.h"

namespace hfe::store {

using namespace format;

namespace {

inline std::atomic_ref<uint64_t> A(uint64_t& v) { return std::atomic_ref<uint64_t>(v); }
inline uint64_t Load(uint64_t& v) { return A(v).load(std::memory_order_relaxed); }
inline void Store(uint64_t& v, uint64_t x) { A(v).store(x, std::memory_order_relaxed); }
// Frames are bounds-checked before they are decided or applied, but they live in shared memory: a stream
// index read again afterwards is clamped, so that no later scribble can send a write past the scratch.
inline uint32_t ScratchIndex(uint32_t i) { return std::min<uint32_t>(i, kMaxStreamsPerFrame - 1); }

}  // namespace

// ------------------------------------------------------------------------------------------ lease
bool Log::TryAcquireLease(bool check_dead) {
  if (!lease_mu_.try_lock()) return false;
  uint64_t expected = 0;
  // Acquire: pairs with the previous holder's release in ReleaseLease(); its table writes are visible.
  if (A(ctl_->lease).compare_exchange_strong(expected, liveness::SelfToken(), std::memory_order_acquire,
                                             std::memory_order_relaxed)) {
    return true;
  }
  // Liveness is read from /proc: only for a caller that has already waited long enough to suspect a death.
  if (check_dead && expected != liveness::SelfToken() && !liveness::IsAlive(expected)) {
    // The holder died holding the role: take it over and redo what it left half-done.
    if (A(ctl_->lease).compare_exchange_strong(expected, liveness::SelfToken(), std::memory_order_acquire,
                                               std::memory_order_relaxed)) {
      Repair();
      return true;
    }
  }
  lease_mu_.unlock();
  return false;
}

void Log::ReleaseLease() {
  // Release: pairs with the acquire in TryAcquireLease(); the next holder sees every table write.
  A(ctl_->lease).store(0, std::memory_order_release);
  lease_mu_.unlock();
}

void Log::PublishResolved(uint64_t pos) {
  if (pos % seg_size_ == 0) pos += kSegmentHeaderSize;
  // Release: pairs with readers' and producers' acquire loads; verdicts and tables before it are visible.
  A(ctl_->resolved).store(pos, std::memory_order_release);
}

void Log::WakeWaiters() const {
  // A read-modify-write, not a plain load: a waiter announces itself with a seq_cst increment and then
  // re-reads the watermark, so either this RMW reads its increment (and wakes it), or the waiter's increment
  // reads this RMW's value, which makes the watermark stored before it visible to the waiter's re-read.
  // (A fence would do the same on the hardware; the race detector does not model fences.)
  if (std::atomic_ref<uint32_t>(ctl_->waiters).fetch_add(0, std::memory_order_seq_cst) != 0) {
    futex::Wake(reinterpret_cast<std::atomic<uint32_t>*>(&ctl_->resolved));
  }
}

// ------------------------------------------------------------------------------------------ waiting
Status Log::WaitResolved(uint64_t end, uint64_t own_frame) {
  std::atomic_ref<uint64_t> res(ctl_->resolved);
  uint32_t spins = 0;
  int64_t waiting_since = 0;
  bool suspect = false;  // waited long enough to check whether the lease holder died
  uint64_t seen = kNoPosition;  // the watermark when it last moved, and since when
  int64_t seen_since = 0;
  for (;;) {
    // Acquire: pairs with PublishResolved(); our frame's verdict is visible once the watermark passed it.
    uint64_t r = res.load(std::memory_order_acquire);
    if (r >= end) return Status::Ok();
    if (suspect) {
      // A holder that is alive but makes no progress (stopped by a signal, a debugger, a frozen cgroup)
      // cannot be replaced safely: it would go on writing the tables when it resumes. Nobody waits for it
      // past twice the unblock timeout (2 s at least, so that a holder merely descheduled on a loaded
      // machine is not taken for stopped): the frame stays committed and is decided when it resumes or dies.
      const int64_t now = clock::MonotonicNanos();
      const int64_t patience = std::max<int64_t>(2 * static_cast<int64_t>(geo_.unblock_timeout_ns), 2'000'000'000);
      if (r != seen) {
        seen = r;
        seen_since = now;
      } else if (now - seen_since > patience) {
        const uint64_t holder = A(ctl_->lease).load(std::memory_order_relaxed);
        return Status(StatusCode::kUnavailable,
                      "the resolver of '" + dir_ + "' (process " + std::to_string(liveness::TokenPid(holder)) +
                          ") has made no progress for " + std::to_string((now - seen_since) / 1'000'000) +
                          " ms (stopped by a signal, a debugger or a frozen cgroup?): the batch at position " +
                          std::to_string(own_frame) + " is committed but not decided, and will be when that " +
                          "process resumes or exits; append it again with the same event ids to learn the outcome");
      }
    }
    if (TryAcquireLease(suspect)) {
      Status s = Status::Ok();
      ResolveLoop(end, own_frame);
      // The walk stops short of our own (committed) frame only where the log ahead of it is damaged.
      if (resolved() < end) {
        s = DataLoss("the log of '" + dir_ + "' is damaged at position " + std::to_string(resolved()) +
                     " (no valid frame where one must be); run `hostfactory verify`, then reopen alone to recover");
      }
      ReleaseLease();
      WakeWaiters();
      if (!s.ok()) return s;
      continue;
    }
    if (++spins < 200) {
      _mm_pause();
      continue;
    }
    if (spins < 400) {
      sched_yield();
      continue;
    }
    int64_t now = clock::MonotonicNanos();
    if (waiting_since == 0) waiting_since = now;
    suspect = now - waiting_since > 1'000'000;
    // Park until the watermark moves (or 1 ms, to re-check the holder's liveness).
    std::atomic_ref<uint32_t> waiters(ctl_->waiters);
    waiters.fetch_add(1, std::memory_order_seq_cst);
    if (res.load(std::memory_order_seq_cst) < end) {
      futex::Wait(reinterpret_cast<std::atomic<uint32_t>*>(&ctl_->resolved), static_cast<uint32_t>(r), 1'000'000);
    }
    waiters.fetch_sub(1, std::memory_order_relaxed);
    spins = 0;
  }
}

void Log::HelpResolve(Help help) {
  const uint64_t r = resolved();
  if (r >= tail()) return;
  if (help == Help::kCheap) {
    // The cheap kind of help, with no system call: resolve a committed frame when nobody holds the role. A
    // frame still being written is its writer's to resolve; taking the lease here would make it spin.
    uint64_t pos = r % seg_size_ == 0 ? r + kSegmentHeaderSize : r;
    uint8_t* base = Segment(pos / seg_size_, false);
    if (!base) return;
    uint64_t s = StateAt(base + pos % seg_size_).load(std::memory_order_acquire);
    if (s == 0 || StateInProgress(s) || A(ctl_->lease).load(std::memory_order_relaxed) != 0) return;
    if (!TryAcquireLease(false)) return;
    ResolveLoop(0);
  } else {
    // Take the role over from a dead holder; when unblocking, also wait out (or pad) the frame at the
    // watermark, whose writer may have died.
    if (!TryAcquireLease(true)) return;
    ResolveLoop(help == Help::kUnblock ? r + 1 : 0);
  }
  ReleaseLease();
  WakeWaiters();
}

// ------------------------------------------------------------------------------------------ the walk
void Log::ResolveLoop(uint64_t wait_until, uint64_t own_frame) {
  // Frames are resolved in runs: every committed frame up to the first one in progress (at most kMaxRun),
  // journaled once at the run's start, each decided and applied in order, the watermark published and
  // waiters woken once at the run's end. A holder killed mid-run leaves the journal pointing at the
  // watermark; Repair restores the counters and re-applies every frame of the run that has its verdict.
  constexpr uint32_t kMaxRun = 64;
  uint64_t pos = resolved();
  uint64_t published = pos;
  uint32_t run = 0;
  bool journaled = false;
  auto publish = [&] {
    if (run == 0) return;
    PublishResolved(pos);
    published = resolved();
    run = 0;
    journaled = false;
    WakeWaiters();
  };
  int64_t stall_start = 0;
  int64_t next_liveness_check = 0;
  const int64_t unblock = static_cast<int64_t>(geo_.unblock_timeout_ns);
  for (;;) {
    if (pos % seg_size_ == 0) pos += kSegmentHeaderSize;
    if (pos >= tail()) break;
    uint8_t* base = Segment(pos / seg_size_, false);
    if (!base) break;  // a missing segment: damage, reported by the caller and by verify
    uint8_t* f = base + pos % seg_size_;
    auto state = StateAt(f);
    // Acquire: pairs with the writer's commit CAS; the frame body and CRC are visible.
    uint64_t s = state.load(std::memory_order_acquire);
    if (s == 0) break;  // damage: a frame must start here
    uint32_t len = StateAbsLength(s);
    if (len < sizeof(FrameHeader) || len % kFrameAlign != 0 || pos % seg_size_ + len > seg_size_) break;
    if (StateInProgress(s)) {
      publish();  // the run so far is readable while this frame is awaited
      if (pos >= wait_until) break;  // not ours to wait for
      int64_t now = clock::MonotonicNanos();
      if (stall_start == 0) {
        stall_start = now;
        next_liveness_check = now + 200'000;
      }
      bool dead = false;
      if (now >= next_liveness_check) {
        dead = !liveness::PidAlive(static_cast<pid_t>(StateTag(s)));
        next_liveness_check = now + 1'000'000;
      }
      if (dead || now - stall_start > unblock) {
        // Unblock: the writer is dead or stalled past the timeout. Its commit CAS will fail and it retries.
        uint64_t expected = s;
        if (state.compare_exchange_strong(expected, MakeCommitted(kTypePad, len), std::memory_order_acq_rel)) {
          Store(ctl_->padded_frames, Load(ctl_->padded_frames) + 1);
        }
        stall_start = 0;
        continue;
      }
      _mm_pause();
      continue;
    }
    stall_start = 0;
    if (StateTag(s) == kTypeData) {
      if (!journaled) {
        WriteJournal(published);
        journaled = true;
      }
      ResolveFrame(pos, f, len, pos == own_frame);
    } else if (StateTag(s) != kTypePad) {
      break;  // unknown frame type: damage
    }
    pos += len;
    if (++run == kMaxRun) {
      publish();
    } else if (journaled) {
      internal::Fault(internal::FaultPoint::kResolverMidRun);
    }
  }
  publish();
}

void Log::WriteJournal(uint64_t run_start) {
  // The counters and the dedup count as they were before the run; journal_frame last, with release.
  Store(ctl_->journal_accepted_events, Load(ctl_->accepted_events));
  Store(ctl_->journal_accepted_frames, Load(ctl_->accepted_frames));
  Store(ctl_->journal_rejected_frames, Load(ctl_->rejected_frames));
  Store(ctl_->journal_corrupt_frames, Load(ctl_->corrupt_frames));
  Store(ctl_->journal_stream_count, Load(ctl_->stream_count));
  Store(ctl_->journal_dedup_base, Load(ctl_->dedup_count));
  A(ctl_->journal_frame).store(run_start, std::memory_order_release);
  internal::Fault(internal::FaultPoint::kResolverAfterJournal);
}

// ------------------------------------------------------------------------------------------ one frame
void Log::ResolveFrame(uint64_t pos, uint8_t* f, uint32_t len, bool trusted) {
  auto* h = reinterpret_cast<FrameHeader*>(f);
  std::atomic_ref<uint32_t> verdict(h->verdict);
  // Bounds first, always (names are read to hash them, records index the scratch by stream): even a frame
  // this process wrote a moment ago, or one whose verdict is already written (by a dead holder, or a
  // scribble), may have been changed since. Out of bounds, it is corrupt, whatever its verdict said.
  if (!MarkCorruptUnlessSane(f, len)) {
    ApplyFrame(pos, f);  // counts it
    return;
  }
  HashEntries(f);
  if (verdict.load(std::memory_order_acquire) == kVerdictPending) {
    uint32_t v = kVerdictAccepted;
    if (!trusted && !CheckFrameCrc(pos, f, len)) {  // a trusted frame skips only its CRC
      v = kVerdictCorrupt;
    } else {
      const uint32_t k = h->record_count;
      // Dedup: all ids known -> AlreadyAppended; some -> refused whole.
      uint32_t found = 0;
      uint32_t off = h->records_offset;
      for (uint32_t i = 0; i < k; ++i) {
        auto* r = reinterpret_cast<RecordHeader*>(f + off);
        if (DedupLookup(r->event_id_hi, r->event_id_lo) != 0) ++found;
        off += RecordSize(r->payload_length);
      }
      if (found == k) {
        v = kVerdictDuplicate;
        off = h->records_offset;
        for (uint32_t i = 0; i < k; ++i) {
          auto* r = reinterpret_cast<RecordHeader*>(f + off);
          uint64_t orig = DedupLookup(r->event_id_hi, r->event_id_lo);
          r->prev_position = orig;
          r->version = kNoVersion;
          uint8_t* ob = Segment(orig / seg_size_, false);
          if (ob && orig % seg_size_ + sizeof(RecordHeader) <= seg_size_) {
            r->version = reinterpret_cast<RecordHeader*>(ob + orig % seg_size_)->version;
          }
          off += RecordSize(r->payload_length);
        }
      } else if (found > 0) {
        v = kVerdictPartialDuplicate;
      } else {
        // Expectations, against the stream table.
        uint32_t soff = sizeof(FrameHeader);
        uint64_t new_streams = 0;
        for (uint32_t si = 0; si < h->stream_count && v == kVerdictAccepted; ++si) {
          auto* se = reinterpret_cast<StreamEntry*>(f + soff);
          StreamSlot* slot = FindStream(entry_hashes_[ScratchIndex(si)].lo, entry_hashes_[ScratchIndex(si)].hi);
          const uint64_t word = slot ? Load(slot->next_version) : 0;
          const uint64_t next = SlotVersion(word);
          scratch_[ScratchIndex(si)] = {slot, next, slot ? Load(slot->last_position) : kNoPosition};
          if (word & kStreamDeleted) {  // hard-deleted by an earlier frame: refused in log order
            v = MakeVerdict(kVerdictStreamDeleted, si);
            break;
          }
          bool ok = true;
          switch (se->expected_kind) {
            case kExpectAny: break;
            case kExpectNoStream: ok = next == 0; break;
            case kExpectStreamExists: ok = next > 0; break;
            default: ok = next == se->expected_version + 1 && se->expected_version != kNoVersion; break;
          }
          if (!ok) {
            reinterpret_cast<RecordHeader*>(f + h->records_offset)->version = next == 0 ? kNoVersion : next - 1;
            v = MakeVerdict(kVerdictConflict, si);
          }
          if (!slot) ++new_streams;
          soff += StreamEntrySize(se->name_length);
        }
        // A tombstone of a stream that has no slot yet takes one; the verdict says so, so that a redo counts
        // it from the frame, not from a table the dead holder may already have changed.
        bool tombstone_slot = false;
        if (auto target = TombstoneTarget(f); v == kVerdictAccepted && target && !FindStream(target->lo, target->hi)) {
          tombstone_slot = true;
          ++new_streams;
        }
        if (v == kVerdictAccepted && Load(ctl_->stream_count) + new_streams > max_streams_) {
          v = kVerdictStreamTableFull;
        }
        if (v == kVerdictAccepted && tombstone_slot) v |= kVerdictTombstoneSlot;
        if (VerdictCode(v) == kVerdictAccepted) {
          off = h->records_offset;
          for (uint32_t i = 0; i < k; ++i) {
            auto* r = reinterpret_cast<RecordHeader*>(f + off);
            StreamScratch& sc = scratch_[ScratchIndex(r->stream_index)];
            r->version = sc.next_version++;
            r->prev_position = sc.last_position;
            sc.last_position = pos + off;
            off += RecordSize(r->payload_length);
          }
        }
      }
    }
    // Release: pairs with the producer's and readers' acquire of the verdict; record fields are visible.
    verdict.store(v, std::memory_order_release);
    internal::Fault(internal::FaultPoint::kResolverAfterVerdict);
  }

  // The run's journal was written before its first frame was decided (ResolveLoop).
  ApplyFrame(pos, f);
}

void Log::ApplyFrame(uint64_t pos, uint8_t* f) {
  auto* h = reinterpret_cast<FrameHeader*>(f);
  uint32_t v = std::atomic_ref<uint32_t>(h->verdict).load(std::memory_order_acquire);
  switch (VerdictCode(v)) {
    case kVerdictAccepted: break;
    case kVerdictCorrupt:
      Store(ctl_->corrupt_frames, Load(ctl_->corrupt_frames) + 1);
      return;
    default:
      Store(ctl_->rejected_frames, Load(ctl_->rejected_frames) + 1);
      return;
  }
  const uint32_t k = h->record_count;
  // Stream post-images: each stream's newest event in this frame.
  uint32_t off = h->records_offset;
  for (uint32_t si = 0; si < h->stream_count; ++si) scratch_[ScratchIndex(si)] = {nullptr, kNoVersion, kNoPosition};
  int64_t newest = 0;
  for (uint32_t i = 0; i < k; ++i) {
    auto* r = reinterpret_cast<RecordHeader*>(f + off);
    StreamScratch& sc = scratch_[ScratchIndex(r->stream_index)];
    if (sc.next_version == kNoVersion && r->version == 0) Store(ctl_->stream_count, Load(ctl_->stream_count) + 1);
    sc.next_version = r->version + 1;
    sc.last_position = pos + off;
    newest = std::max(newest, r->occurred_at_ns);
    off += RecordSize(r->payload_length);
  }
  uint32_t soff = sizeof(FrameHeader);
  for (uint32_t si = 0; si < h->stream_count; ++si) {
    auto* se = reinterpret_cast<StreamEntry*>(f + soff);
    StreamSlot* slot = FindStream(entry_hashes_[ScratchIndex(si)].lo, entry_hashes_[ScratchIndex(si)].hi);
    if (!slot) slot = InsertStream(entry_hashes_[ScratchIndex(si)].lo, entry_hashes_[ScratchIndex(si)].hi);
    if (slot) {
      // Release: pairs with GetStream()'s acquire loads; a reader that sees the new position also sees this
      // frame's verdict and record fields (written above), so ViewAt accepts it before the watermark moves.
      A(slot->last_position).store(scratch_[ScratchIndex(si)].last_position, std::memory_order_release);
      A(slot->next_version).store(scratch_[ScratchIndex(si)].next_version, std::memory_order_release);
    }
    soff += StreamEntrySize(se->name_length);
  }
  // A hard delete: the deleted stream's slot is marked, so every later frame appending to it is refused.
  // Setting the bit again on a redo changes nothing.
  if (auto target = TombstoneTarget(f)) {
    StreamSlot* slot = FindStream(target->lo, target->hi);
    if (!slot) slot = InsertStream(target->lo, target->hi);
    if (v & kVerdictTombstoneSlot) Store(ctl_->stream_count, Load(ctl_->stream_count) + 1);
    // Release: pairs with the acquire in GetStream(); appenders checking the bit see it.
    if (slot) A(slot->next_version).fetch_or(kStreamDeleted, std::memory_order_release);
  }
  // Dedup window: FIFO ring plus hash; the oldest id leaves as a new one enters.
  const uint64_t window = geo_.dedup_window;
  uint64_t base = Load(ctl_->dedup_count);
  off = h->records_offset;
  for (uint32_t i = 0; i < k; ++i) {
    auto* r = reinterpret_cast<RecordHeader*>(f + off);
    uint64_t idx = base + i;
    DedupRingEntry& ring = ring_[idx % window];
    if (idx >= window && ring.position != 0) DedupRemove(ring.id_hi, ring.id_lo, idx % window);
    ring = {r->event_id_hi, r->event_id_lo, pos + off};
    if (i == k / 2) internal::Fault(internal::FaultPoint::kResolverMidApply);
    DedupInsert(r->event_id_hi, r->event_id_lo, idx % window);
    off += RecordSize(r->payload_length);
  }
  Store(ctl_->dedup_count, base + k);
  // Sparse time index: newest occurred_at per segment.
  uint64_t seg = pos / seg_size_;
  TimeIndexSlot& ts = time_index_[seg % geo_.time_index_slots];
  if (ts.segment_plus_one != seg + 1) {
    ts.max_occurred_at_ns = newest;
    ts.segment_plus_one = seg + 1;
  } else if (newest > ts.max_occurred_at_ns) {
    ts.max_occurred_at_ns = newest;
  }
  if (newest > ctl_->newest_occurred_at_ns) ctl_->newest_occurred_at_ns = newest;
  Store(ctl_->accepted_events, Load(ctl_->accepted_events) + k);
  Store(ctl_->accepted_frames, Load(ctl_->accepted_frames) + 1);
}

void Log::Repair() {
  Store(ctl_->repairs, Load(ctl_->repairs) + 1);
  const uint64_t start = resolved();
  if (A(ctl_->journal_frame).load(std::memory_order_acquire) != start) return;  // no run was in progress
  // Undo the dead holder's run: counters and dedup count as they were before it, the dedup hash rebuilt
  // from its ring; then redo every frame of the run that has a verdict, in order, from the verdicts
  // already written (nothing is decided twice). The first frame without one ends the run.
  Store(ctl_->accepted_events, Load(ctl_->journal_accepted_events));
  Store(ctl_->accepted_frames, Load(ctl_->journal_accepted_frames));
  Store(ctl_->rejected_frames, Load(ctl_->journal_rejected_frames));
  Store(ctl_->corrupt_frames, Load(ctl_->journal_corrupt_frames));
  Store(ctl_->stream_count, Load(ctl_->journal_stream_count));
  Store(ctl_->dedup_count, Load(ctl_->journal_dedup_base));
  DedupRebuild();
  uint64_t pos = start, end = start;
  for (;;) {
    if (pos % seg_size_ == 0) pos += kSegmentHeaderSize;
    if (pos >= tail()) break;
    uint8_t* base = Segment(pos / seg_size_, false);
    if (!base) break;
    uint8_t* f = base + pos % seg_size_;
    const uint64_t s = StateAt(f).load(std::memory_order_acquire);
    const uint32_t len = StateAbsLength(s);
    if (s == 0 || StateInProgress(s) || len < sizeof(FrameHeader) || len % kFrameAlign != 0 ||
        pos % seg_size_ + len > seg_size_) {
      break;
    }
    if (StateTag(s) == kTypeData) {
      const uint32_t v = std::atomic_ref<uint32_t>(reinterpret_cast<FrameHeader*>(f)->verdict).load(std::memory_order_acquire);
      if (v == kVerdictPending) break;
      if (MarkCorruptUnlessSane(f, len)) HashEntries(f);  // bounds again: it may have changed since
      ApplyFrame(pos, f);
      end = pos + len;
    } else if (StateTag(s) != kTypePad) {
      break;
    }
    pos += len;
  }
  if (end != start) PublishResolved(end);
}

// ------------------------------------------------------------------------------------------ frame checks
bool Log::MarkCorruptUnlessSane(uint8_t* f, uint32_t len) {
  if (CheckFrameBounds(f, len).empty()) return true;
  // Release: pairs with readers' acquire of the verdict; they skip the frame as corrupt.
  std::atomic_ref<uint32_t>(reinterpret_cast<FrameHeader*>(f)->verdict).store(kVerdictCorrupt, std::memory_order_release);
  return false;
}

void Log::HashEntries(const uint8_t* f) {
  // The stream table is keyed by the hashes of the names in the frame, computed here: a producer never
  // supplies one, so none can address another stream's slot. Only for a frame whose bounds were just
  // checked; a corrupt frame is never applied, so its entries are left unhashed.
  const auto* h = reinterpret_cast<const FrameHeader*>(f);
  if (VerdictCode(std::atomic_ref<const uint32_t>(h->verdict).load(std::memory_order_acquire)) == kVerdictCorrupt ||
      h->stream_count > kMaxStreamsPerFrame) {
    return;
  }
  uint32_t soff = sizeof(FrameHeader);
  for (uint32_t si = 0; si < h->stream_count; ++si) {
    const auto* se = reinterpret_cast<const StreamEntry*>(f + soff);
    entry_hashes_[si] = internal::HashStream(
        std::string_view(reinterpret_cast<const char*>(f + soff + sizeof(StreamEntry)), se->name_length));
    soff += StreamEntrySize(se->name_length);
  }
}

std::optional<internal::Hash128> Log::TombstoneTarget(const uint8_t* f) const {
  // Only a one-stream, one-record frame of "$meta-<stream>" whose record carries the tombstone flag.
  const auto* h = reinterpret_cast<const FrameHeader*>(f);
  if (h->stream_count != 1 || h->record_count != 1) return std::nullopt;
  const auto* r = reinterpret_cast<const RecordHeader*>(f + h->records_offset);
  if (!(r->flags & kRecordTombstone)) return std::nullopt;
  const auto* se = reinterpret_cast<const StreamEntry*>(f + sizeof(FrameHeader));
  std::string_view name(reinterpret_cast<const char*>(f + sizeof(FrameHeader) + sizeof(StreamEntry)), se->name_length);
  const std::string_view prefix = kMetaStreamPrefix;
  if (name.size() <= prefix.size() || name.substr(0, prefix.size()) != prefix) return std::nullopt;
  return internal::HashStream(name.substr(prefix.size()));
}

// ------------------------------------------------------------------------------------------ tables
StreamSlot* Log::FindStream(uint64_t hash_lo, uint64_t hash_hi) const {
  uint64_t i = hash_lo & stream_mask_;
  for (uint64_t probes = 0; probes <= stream_mask_; ++probes, i = (i + 1) & stream_mask_) {
    StreamSlot& s = streams_[i];
    // Acquire: pairs with the release in InsertStream(); the slot's other fields are visible.
    uint64_t lo = A(s.hash_lo).load(std::memory_order_acquire);
    if (lo == 0) return nullptr;
    if (lo == hash_lo && s.hash_hi == hash_hi) return &s;
  }
  return nullptr;
}

StreamSlot* Log::InsertStream(uint64_t hash_lo, uint64_t hash_hi) {
  uint64_t i = hash_lo & stream_mask_;
  for (uint64_t probes = 0; probes <= stream_mask_; ++probes, i = (i + 1) & stream_mask_) {
    StreamSlot& s = streams_[i];
    if (A(s.hash_lo).load(std::memory_order_relaxed) == 0) {
      s.hash_hi = hash_hi;
      s.next_version = 0;
      s.last_position = kNoPosition;
      // Release: pairs with the acquire in FindStream().
      A(s.hash_lo).store(hash_lo, std::memory_order_release);
      return &s;
    }
  }
  return nullptr;
}

uint64_t Log::DedupLookup(uint64_t hi, uint64_t lo) const {
  const uint64_t h = internal::HashEventId(hi, lo);
  const uint32_t tag = static_cast<uint32_t>(h);
  const uint64_t window = geo_.dedup_window;
  uint64_t i = h & dedup_mask_;
  for (uint64_t probes = 0; probes <= dedup_mask_; ++probes, i = (i + 1) & dedup_mask_) {
    const DedupHashSlot s = dedup_[i];
    if (s == 0) return 0;
    if (DedupSlotHash(s) == tag && DedupSlotRing(s) < window) {
      const DedupRingEntry& e = ring_[DedupSlotRing(s)];
      if (e.id_hi == hi && e.id_lo == lo) return e.position;
    }
  }
  return 0;
}

void Log::DedupInsert(uint64_t hi, uint64_t lo, uint64_t ring_slot) {
  const uint64_t h = internal::HashEventId(hi, lo);
  const DedupHashSlot mine = MakeDedupSlot(h, ring_slot);
  uint64_t i = h & dedup_mask_;
  for (uint64_t probes = 0; probes <= dedup_mask_; ++probes, i = (i + 1) & dedup_mask_) {
    if (dedup_[i] == 0) {
      dedup_[i] = mine;
      return;
    }
    if (dedup_[i] == mine) return;  // a redo after a crash: already there
  }
}

void Log::DedupRemove(uint64_t hi, uint64_t lo, uint64_t ring_slot) {
  const uint64_t h = internal::HashEventId(hi, lo);
  const DedupHashSlot mine = MakeDedupSlot(h, ring_slot);
  uint64_t i = h & dedup_mask_;
  uint64_t probes = 0;
  for (; probes <= dedup_mask_; ++probes, i = (i + 1) & dedup_mask_) {
    if (dedup_[i] == 0) return;
    if (dedup_[i] == mine) break;
  }
  if (probes > dedup_mask_) return;
  // Backward-shift deletion keeps probe chains intact without tombstones; a slot's home comes from its own
  // hash bits, so no ring entry is read.
  uint64_t hole = i;
  uint64_t j = i;
  for (uint64_t n = 0; n <= dedup_mask_; ++n) {
    j = (j + 1) & dedup_mask_;
    const DedupHashSlot s = dedup_[j];
    if (s == 0) break;
    uint64_t home = DedupSlotHash(s) & dedup_mask_;
    // Move s into the hole when its home is not cyclically within (hole, j].
    bool in_between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (!in_between) {
      dedup_[hole] = s;
      hole = j;
    }
  }
  dedup_[hole] = 0;
}

void Log::DedupRebuild() {
  std::memset(static_cast<void*>(dedup_), 0, geo_.dedup_slots * sizeof(DedupHashSlot));
  const uint64_t window = geo_.dedup_window;
  uint64_t count = Load(ctl_->dedup_count);
  for (uint64_t idx = count > window ? count - window : 0; idx < count; ++idx) {
    const DedupRingEntry& r = ring_[idx % window];
    if (r.position != 0) DedupInsert(r.id_hi, r.id_lo, idx % window);
  }
}

void Log::Prefetch(std::span<const StreamAppend> appends) const {
  int budget = 4;
  for (const StreamAppend& a : appends) {
    internal::Hash128 hs = internal::HashStream(a.stream);
    __builtin_prefetch(&streams_[hs.lo & stream_mask_]);
    for (const EventData& e : a.events) {
      if (budget-- <= 0) break;
      __builtin_prefetch(&dedup_[internal::HashEventId(e.id.hi, e.id.lo) & dedup_mask_]);
    }
  }
  // The id that the next acceptance evicts from the window.
  const uint64_t window = geo_.dedup_window;
  uint64_t next = Load(ctl_->dedup_count);
  if (next >= window) {
    const DedupRingEntry& old = ring_[next % window];
    __builtin_prefetch(&dedup_[internal::HashEventId(old.id_hi, old.id_lo) & dedup_mask_]);
  }
}

}  // namespace hfe::store
