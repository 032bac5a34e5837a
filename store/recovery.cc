// Recovery on open (run by a process that found itself alone on the store) and full verification.
#include <algorithm>
#include <cstring>
#include <deque>
#include <unordered_map>
#include <unordered_set>

#include "ipc/liveness.h"
#include "store/internal/hash.h"
#include "store/internal/log.h"

namespace hfe::store {

using namespace format;

Status Log::Recover(RecoveryMode mode) {
  recovery_ = RecoveryReport{};
  recovery_.ran = true;
  // On disk, a store the last process did not close cleanly may have lost any write the kernel had not
  // flushed, in any order: its tables are rebuilt from the log before anything else trusts them.
  if (on_disk_ && std::atomic_ref<uint64_t>(ctl_->clean_shutdown).load(std::memory_order_acquire) == 0) {
    HFE_RETURN_IF_ERROR(RebuildTables(mode));
  }
  // A resolver that died holding the role: no process is attached besides us, so it is dead.
  std::atomic_ref<uint64_t> lease(ctl_->lease);
  uint64_t holder = lease.load(std::memory_order_acquire);
  if (holder != 0 && holder != liveness::SelfToken()) {
    if (lease.compare_exchange_strong(holder, liveness::SelfToken(), std::memory_order_acquire)) {
      std::lock_guard<std::mutex> guard(lease_mu_);
      Repair();
      lease.store(0, std::memory_order_release);
    }
  }

  // Check the unresolved tail: the only part a crash can have left half-written.
  uint64_t pos = resolved();
  uint64_t t = tail();
  std::atomic_ref<uint64_t> tail_ref(ctl_->tail);
  while (pos < t) {
    if (pos % seg_size_ == 0) pos += kSegmentHeaderSize;
    if (pos >= t) break;
    std::string damage;
    auto mapped = MapSegment(pos / seg_size_, false);
    uint8_t* base = mapped.ok() ? *mapped : nullptr;
    uint8_t* f = base ? base + pos % seg_size_ : nullptr;
    uint64_t s = f ? StateAt(f).load(std::memory_order_acquire) : 0;
    uint32_t len = StateAbsLength(s);
    if (!base) {
      if (mapped.status().code() == StatusCode::kResourceExhausted) {
        return Status(mapped.status().code(), "cannot recover '" + dir_ + "': " + mapped.status().message());
      }
      damage = "segment " + std::to_string(pos / seg_size_) + " cannot be read: " + mapped.status().message();
    } else if (s == 0) {
      damage = "no frame header where the log continues";
    } else if (len < sizeof(FrameHeader) || len % kFrameAlign || pos % seg_size_ + len > seg_size_) {
      damage = "impossible frame length " + std::to_string(len);
    } else if (StateInProgress(s)) {
      // Its writer is dead (we are alone): it was never acknowledged. Pad it.
      StateAt(f).store(MakeCommitted(kTypePad, len), std::memory_order_release);
      ++recovery_.frames_padded;
      ++ctl_->padded_frames;
      pos += len;
      continue;
    } else if (StateTag(s) == kTypeData) {
      std::string bad = CheckFrameBounds(f, len);
      if (!bad.empty()) damage = bad;
      else if (!CheckFrameCrc(pos, f, len)) damage = "CRC mismatch";
    } else if (StateTag(s) != kTypePad) {
      damage = "unknown frame type " + std::to_string(StateTag(s));
    }
    ++recovery_.frames_checked;
    if (damage.empty()) {
      pos += len;
      continue;
    }
    std::string where = "position " + std::to_string(pos) + ": " + damage;
    if (recovery_.damage.empty()) recovery_.damage = where;
    if (mode == RecoveryMode::kStrict) {
      return DataLoss("store '" + dir_ + "' is damaged at " + where +
                      " (strict recovery refuses to open; reopen with point-in-time or salvage recovery)");
    }
    if (mode == RecoveryMode::kSalvage && base && s != 0 && len >= sizeof(FrameHeader) && len % kFrameAlign == 0 &&
        pos % seg_size_ + len <= seg_size_) {
      // The length is sane: the resolver will mark the frame corrupt and go on after it.
      ++recovery_.frames_skipped;
      pos += len;
      continue;
    }
    if (mode == RecoveryMode::kSalvage && base) {
      // The length itself is damaged: skip the rest of this segment.
      uint32_t rest = static_cast<uint32_t>(seg_size_ - pos % seg_size_);
      std::memset(f + 8, 0, rest - 8);
      StateAt(f).store(MakeCommitted(kTypePad, rest), std::memory_order_release);
      ++recovery_.frames_skipped;
      pos += rest;
      if (pos > t) {
        // The tail was inside the padded rest: the log goes on in the next segment, so the tail moves there
        // too (else the watermark would pass the tail and no append or reopen could follow).
        if (!Segment(pos / seg_size_, /*create=*/true)) {
          return IoError("store '" + dir_ + "': salvage cannot create segment " + std::to_string(pos / seg_size_) +
                         " to continue the log after the damage at " + where + " (disk full?)");
        }
        t = pos + kSegmentHeaderSize;
        tail_ref.store(t, std::memory_order_release);
      }
      continue;
    }
    // Point in time: drop this frame and everything after it, and zero those bytes so that no stale byte
    // can later be read as a header.
    for (uint64_t p = pos; p < t;) {
      if (p % seg_size_ == 0) p += kSegmentHeaderSize;
      uint8_t* b = Segment(p / seg_size_, false);
      uint64_t st = b ? StateAt(b + p % seg_size_).load(std::memory_order_relaxed) : 0;
      uint32_t l = StateAbsLength(st);
      if (!b || st == 0 || l < sizeof(FrameHeader) || l % kFrameAlign || p % seg_size_ + l > seg_size_) {
        ++recovery_.frames_dropped;
        break;
      }
      ++recovery_.frames_dropped;
      p += l;
    }
    recovery_.bytes_dropped = t - pos;
    for (uint64_t seg = pos / seg_size_; seg <= std::max(t / seg_size_, std::atomic_ref<uint64_t>(ctl_->prepared_segment).load(std::memory_order_relaxed)); ++seg) {
      uint8_t* b = Segment(seg, false);
      if (!b) continue;
      uint64_t from = seg == pos / seg_size_ ? pos % seg_size_ : kSegmentHeaderSize;
      std::memset(b + from, 0, seg_size_ - from);
    }
    tail_ref.store(pos, std::memory_order_release);
    break;
  }

  // Resolve whatever is committed.
  if (TryAcquireLease(true)) {
    ResolveLoop(tail());
    ReleaseLease();
  }
  if (resolved() < tail()) {
    return DataLoss("store '" + dir_ + "' could not be resolved past position " + std::to_string(resolved()) +
                    " (run `hostfactory verify`)");
  }
  return Status::Ok();
}

Result<VerifyReport> Log::Verify() const {
  const_cast<Log*>(this)->HelpResolve();
  VerifyReport rep;
  auto problem = [&](uint64_t pos, const std::string& what) {
    ++rep.damaged;
    if (rep.problems.size() < 100) rep.problems.push_back("position " + std::to_string(pos) + ": " + what);
  };
  struct StreamState {
    uint64_t next_version = 0;
    uint64_t last_position = kNoPosition;
  };
  std::unordered_map<std::string, StreamState> streams;
  std::unordered_set<std::string> deleted;  // streams hard-deleted so far, in log order
  // The dedup window, re-derived: id -> position, with the FIFO of ids in acceptance order.
  struct IdHash {
    size_t operator()(const std::pair<uint64_t, uint64_t>& p) const { return internal::HashEventId(p.first, p.second); }
  };
  std::unordered_map<std::pair<uint64_t, uint64_t>, uint64_t, IdHash> window;
  std::deque<std::pair<std::pair<uint64_t, uint64_t>, uint64_t>> fifo;
  const uint64_t window_size = geo_.dedup_window;

  const uint64_t first = std::atomic_ref<uint64_t>(ctl_->first_segment).load(std::memory_order_relaxed);
  const uint64_t end = resolved();
  uint64_t pos = first * seg_size_ + kSegmentHeaderSize;
  // With retired segments, a stream's oldest retained event continues from before `retained`, and an
  // already-appended verdict may name an original that was retired.
  const uint64_t retained = first * seg_size_;
  while (pos < end) {
    if (pos % seg_size_ == 0) pos += kSegmentHeaderSize;
    if (pos >= end) break;
    auto mapped = MapSegment(pos / seg_size_, false);
    if (!mapped.ok()) {
      // Out of descriptors or memory is not damage: verification cannot go on, and says why.
      if (mapped.status().code() == StatusCode::kResourceExhausted) {
        return Status(mapped.status().code(), "cannot verify '" + dir_ + "': " + mapped.status().message());
      }
      problem(pos, "segment " + std::to_string(pos / seg_size_) + " cannot be read: " + mapped.status().message());
      pos = (pos / seg_size_ + 1) * seg_size_;
      continue;
    }
    uint8_t* base = *mapped;
    uint8_t* f = base + pos % seg_size_;
    uint64_t s = StateAt(f).load(std::memory_order_acquire);
    uint32_t len = StateAbsLength(s);
    if (s == 0 || StateInProgress(s) || len < sizeof(FrameHeader) || len % kFrameAlign ||
        pos % seg_size_ + len > seg_size_) {
      problem(pos, "bad frame state below the resolved watermark; the rest of this segment is unreadable");
      pos = (pos / seg_size_ + 1) * seg_size_;
      continue;
    }
    ++rep.frames;
    if (StateTag(s) == kTypePad) {
      ++rep.padding_frames;
      pos += len;
      continue;
    }
    if (StateTag(s) != kTypeData) {
      problem(pos, "unknown frame type");
      pos += len;
      continue;
    }
    const auto* h = reinterpret_cast<const FrameHeader*>(f);
    uint32_t verdict = VerdictCode(std::atomic_ref<uint32_t>(const_cast<uint32_t&>(h->verdict)).load(std::memory_order_acquire));
    std::string bad = CheckFrameBounds(f, len);
    if (bad.empty() && !CheckFrameCrc(pos, f, len)) bad = "CRC mismatch";
    if (!bad.empty()) {
      if (verdict != kVerdictCorrupt) problem(pos, bad);
      pos += len;
      continue;
    }
    if (verdict == kVerdictCorrupt) {
      problem(pos, "marked corrupt though its CRC and bounds are sound");
      pos += len;
      continue;
    }
    if (verdict != kVerdictAccepted) {
      ++rep.rejected_frames;
      if (verdict == kVerdictDuplicate) {
        uint32_t off = h->records_offset;
        for (uint32_t i = 0; i < h->record_count; ++i) {
          const auto* r = reinterpret_cast<const RecordHeader*>(f + off);
          auto it = window.find({r->event_id_hi, r->event_id_lo});
          if (r->prev_position < retained) {
            // the original was retired
          } else if (it == window.end() || it->second != r->prev_position) {
            problem(pos + off, "already-appended verdict names no matching earlier event");
          }
          off += RecordSize(r->payload_length);
        }
      }
      pos += len;
      continue;
    }
    // Accepted: versions continue each stream without a gap and chain to the stream's previous event.
    std::vector<std::string> names;
    uint32_t soff = sizeof(FrameHeader);
    for (uint32_t si = 0; si < h->stream_count; ++si) {
      const auto* se = reinterpret_cast<const StreamEntry*>(f + soff);
      names.emplace_back(reinterpret_cast<const char*>(f + soff + sizeof(StreamEntry)), se->name_length);
      soff += StreamEntrySize(se->name_length);
    }
    for (const std::string& name : names) {
      if (deleted.count(name)) problem(pos, "stream \"" + name + "\" appended after its hard delete");
    }
    if (TombstoneTarget(f)) deleted.insert(names[0].substr(sizeof(kMetaStreamPrefix) - 1));
    uint32_t off = h->records_offset;
    for (uint32_t i = 0; i < h->record_count; ++i) {
      const auto* r = reinterpret_cast<const RecordHeader*>(f + off);
      auto [sit, fresh] = streams.try_emplace(names[r->stream_index]);
      StreamState& st = sit->second;
      if (fresh && retained > 0 && r->prev_position != kNoPosition && r->prev_position < retained) {
        st.next_version = r->version;  // the stream's older events were retired
        st.last_position = r->prev_position;
      }
      if (r->version != st.next_version) {
        problem(pos + off, "stream \"" + names[r->stream_index] + "\" version " + std::to_string(r->version) +
                               ", expected " + std::to_string(st.next_version));
      }
      if (r->prev_position != st.last_position) problem(pos + off, "stream chain broken");
      st.next_version = r->version + 1;
      st.last_position = pos + off;
      if (r->flags & kRecordRedacted) {
        const uint8_t* body = reinterpret_cast<const uint8_t*>(r) + sizeof(RecordHeader);
        if (!std::all_of(body, body + r->payload_length, [](uint8_t b) { return b == 0; })) {
          problem(pos + off, "redacted, but its body is not zeroed yet (a reader held it): run `hostfactory redact "
                             "--position " + std::to_string(pos + off) + "` again");
        }
      }
      std::pair<uint64_t, uint64_t> id{r->event_id_hi, r->event_id_lo};
      if (window.count(id)) problem(pos + off, "event id accepted twice within the dedup window");
      if (fifo.size() == window_size) {
        auto old = fifo.front();
        fifo.pop_front();
        auto it = window.find(old.first);
        if (it != window.end() && it->second == old.second) window.erase(it);
      }
      window[id] = pos + off;
      fifo.push_back({id, pos + off});
      ++rep.events;
      off += RecordSize(r->payload_length);
    }
    pos += len;
  }
  rep.streams = streams.size();
  for (const auto& [name, st] : streams) {
    StreamInfo info = GetStream(name);
    if (!info.exists || info.next_version != st.next_version || info.last_position != st.last_position) {
      problem(st.last_position, "stream table entry of \"" + name + "\" does not match the log");
    }
  }
  for (const std::string& name : deleted) {
    if (!GetStream(name).hard_deleted) problem(end, "stream \"" + name + "\" was hard-deleted, its table slot says not");
  }
  uint64_t counted = std::atomic_ref<uint64_t>(ctl_->accepted_events).load(std::memory_order_relaxed);
  if (retained == 0 && counted != rep.events) {  // the counter includes retired events
    problem(end, "event counter says " + std::to_string(counted) + ", the log holds " + std::to_string(rep.events));
  }
  return rep;
}

}  // namespace hfe::store
