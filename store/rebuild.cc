// Rebuilding the control region's tables from the log after an unclean shutdown of a store on disk.
//
// On disk, the kernel writes dirty pages back in any order: after a power loss the control file may hold a
// watermark, stream slots, dedup entries or counters that describe segment bytes which never reached the disk,
// and each of its pages may come from another moment. What stays true: every frame below the durable
// checkpoint (`durable_position`, advanced only after the segments below it were synced) is on disk. So an
// opener that finds a disk store not closed cleanly trusts no table. It walks the retained log from its first
// frame, checks every frame's bytes (the CRC from the checkpoint on), re-derives each accepted record's
// version and chain link, and rebuilds the stream table, the dedup window, the time index and the counters
// from what it found. It stops at the first frame whose bytes are gone (the log ends there: that frame and
// everything after it is dropped and zeroed) and at the first frame whose resolver fields do not follow
// (from there on, verdicts are cleared and the resolver decides again, which gives the same decisions from
// the same state).
#include <sys/vfs.h>

#include <algorithm>
#include <cstring>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "store/internal/log.h"

namespace hfe::store {

using namespace format;

namespace {

inline std::atomic_ref<uint64_t> A(uint64_t& v) { return std::atomic_ref<uint64_t>(v); }

struct HashKey {
  uint64_t lo, hi;
  bool operator==(const HashKey&) const = default;
};
struct HashKeyHash {
  size_t operator()(const HashKey& k) const { return k.lo ^ (k.hi * 0x9e3779b97f4a7c15ull); }
};

// What the walk learned about one stream.
struct Walked {
  uint64_t next_version = 0;
  uint64_t last_position = kNoPosition;
};

}  // namespace

bool Log::OnTmpfs() const {
  struct statfs fs {};
  constexpr long kTmpfsMagic = 0x01021994;
  return ::statfs(dir_.c_str(), &fs) == 0 && fs.f_type == kTmpfsMagic;
}

Status Log::RebuildTables(RecoveryMode mode) {
  const uint64_t S = seg_size_;
  const uint64_t first = A(ctl_->first_segment).load(std::memory_order_relaxed);
  const uint64_t retained = first * S;
  const uint64_t old_resolved = resolved();
  const uint64_t old_tail = tail();
  const uint64_t durable = A(ctl_->durable_position).load(std::memory_order_relaxed);

  std::unordered_map<HashKey, Walked, HashKeyHash> streams;
  std::unordered_set<HashKey, HashKeyHash> deleted;
  std::vector<DedupRingEntry> ids;  // accepted ids of the retained log, in log order
  std::unordered_map<uint64_t, int64_t> newest_in_segment;
  uint64_t events = 0, accepted_frames = 0, rejected_frames = 0, corrupt_frames = 0;
  int64_t newest = 0;

  // The walk. `decided_end`: where trusted verdicts end; `end`: where intact bytes end.
  uint64_t pos = retained + kSegmentHeaderSize;
  uint64_t decided_end = kNoPosition;
  std::string lost;  // why the log ends where it ends
  while (pos < old_tail) {
    if (pos % S == 0) pos += kSegmentHeaderSize;
    if (pos >= old_tail) break;
    auto mapped = MapSegment(pos / S, false);
    if (!mapped.ok()) {
      if (mapped.status().code() == StatusCode::kResourceExhausted) return mapped.status();
      lost = "segment " + std::to_string(pos / S) + ": " + mapped.status().message();
      break;
    }
    uint8_t* f = *mapped + pos % S;
    const uint64_t s = StateAt(f).load(std::memory_order_acquire);
    const uint32_t len = StateAbsLength(s);
    if (s == 0 || len < sizeof(FrameHeader) || len % kFrameAlign || pos % S + len > S) {
      lost = "no intact frame header";
      break;
    }
    if (StateInProgress(s) || StateTag(s) == kTypePad) {
      if (StateInProgress(s) && decided_end == kNoPosition) decided_end = pos;
      pos += len;
      continue;
    }
    if (StateTag(s) != kTypeData) {
      lost = "unknown frame type " + std::to_string(StateTag(s));
      break;
    }
    std::string bad = CheckFrameBounds(f, len);
    if (bad.empty() && pos + len > durable && !CheckFrameCrc(pos, f, len)) bad = "CRC mismatch";
    if (!bad.empty()) {
      lost = bad;
      break;
    }
    if (decided_end != kNoPosition || pos >= old_resolved) {
      pos += len;  // intact, to be decided again by the resolver
      continue;
    }
    auto* h = reinterpret_cast<FrameHeader*>(f);
    const uint32_t verdict = VerdictCode(std::atomic_ref<uint32_t>(h->verdict).load(std::memory_order_acquire));
    bool follows = verdict != kVerdictPending;
    if (follows && verdict == kVerdictAccepted) {
      // Each record must continue its stream: version and chain link as the walk so far says.
      uint32_t soff = sizeof(FrameHeader);
      std::vector<HashKey> keys;
      for (uint32_t si = 0; si < h->stream_count; ++si) {
        const auto* se = reinterpret_cast<const StreamEntry*>(f + soff);
        const auto hs = internal::HashStream(
            std::string_view(reinterpret_cast<const char*>(se) + sizeof(StreamEntry), se->name_length));
        keys.push_back({hs.lo, hs.hi});
        soff += StreamEntrySize(se->name_length);
      }
      std::unordered_map<uint32_t, Walked> local;
      uint32_t off = h->records_offset;
      for (uint32_t i = 0; i < h->record_count && follows; ++i) {
        const auto* r = reinterpret_cast<const RecordHeader*>(f + off);
        auto [it, fresh] = local.try_emplace(r->stream_index);
        if (fresh) {
          auto known = streams.find(keys[r->stream_index]);
          if (known != streams.end()) {
            it->second = known->second;
          } else if (r->prev_position != kNoPosition && r->prev_position < retained) {
            it->second = {r->version, r->prev_position};  // the stream's older events were retired
          }
          if (deleted.count(keys[r->stream_index])) follows = false;  // appended after its hard delete
        }
        follows = follows && r->version == it->second.next_version && r->prev_position == it->second.last_position;
        it->second = {r->version + 1, pos + off};
        off += RecordSize(r->payload_length);
      }
      if (follows) {
        for (auto& [index, w] : local) streams[keys[index]] = w;
        if (auto target = TombstoneTarget(f)) deleted.insert({target->lo, target->hi});
        off = h->records_offset;
        for (uint32_t i = 0; i < h->record_count; ++i) {
          const auto* r = reinterpret_cast<const RecordHeader*>(f + off);
          ids.push_back({r->event_id_hi, r->event_id_lo, pos + off});
          int64_t& n = newest_in_segment[pos / S];
          n = std::max(n, r->occurred_at_ns);
          newest = std::max(newest, r->occurred_at_ns);
          off += RecordSize(r->payload_length);
        }
        events += h->record_count;
        ++accepted_frames;
      }
    } else if (follows) {
      ++(verdict == kVerdictCorrupt ? corrupt_frames : rejected_frames);
    }
    if (!follows) {
      decided_end = pos;
      continue;  // the same frame again, now past decided_end: its bytes are still checked
    }
    pos += len;
  }
  const uint64_t end = pos < old_tail ? pos : old_tail;
  if (end < old_tail && mode == RecoveryMode::kStrict) {
    return DataLoss("store '" + dir_ + "' was not closed cleanly and lost writes: at position " + std::to_string(end) +
                    ", " + lost + " (strict recovery refuses to open; reopen with point-in-time recovery to keep the " +
                    "log up to there)");
  }
  if (decided_end == kNoPosition || decided_end > end) decided_end = std::min(end, old_resolved);

  // From decided_end on, verdicts are cleared: the resolver decides those frames again from the rebuilt
  // tables. From `end` on, the bytes are gone: the log ends there.
  for (uint64_t p = decided_end; p < end;) {
    if (p % S == 0) p += kSegmentHeaderSize;
    if (p >= end) break;
    uint8_t* b = Segment(p / S, false);
    if (!b) break;  // walked above: cannot happen unless the file vanished meanwhile
    uint8_t* f = b + p % S;
    const uint64_t s = StateAt(f).load(std::memory_order_relaxed);
    if (StateTag(s) == kTypeData && !StateInProgress(s)) {
      std::atomic_ref<uint32_t>(reinterpret_cast<FrameHeader*>(f)->verdict).store(kVerdictPending, std::memory_order_relaxed);
    }
    p += StateAbsLength(s);
  }
  if (end < old_tail) {
    recovery_.damage = "position " + std::to_string(end) + ": " + lost +
                       " (an unclean shutdown of a store on disk lost these writes)";
    recovery_.bytes_dropped = old_tail - end;
    for (uint64_t seg = end / S; seg <= old_tail / S; ++seg) {
      uint8_t* b = Segment(seg, false);
      if (!b) continue;
      const uint64_t from = seg == end / S ? end % S : kSegmentHeaderSize;
      if (from < S) std::memset(b + std::max<uint64_t>(from, kSegmentHeaderSize), 0, S - std::max<uint64_t>(from, kSegmentHeaderSize));
    }
    A(ctl_->tail).store(end % S == 0 ? end + kSegmentHeaderSize : end, std::memory_order_release);
  }

  // The stream table: streams the walk saw get their walked state; slots that point into the walked log or
  // past it without the walk having seen their stream held only lost events; wholly retired streams and
  // tombstones stay.
  uint64_t stream_count = 0;
  for (uint64_t i = 0; i <= stream_mask_; ++i) {
    StreamSlot& slot = streams_[i];
    if (slot.hash_lo == 0) continue;
    const HashKey key{slot.hash_lo, slot.hash_hi};
    uint64_t word = slot.next_version;
    const uint64_t bit = (word & kStreamDeleted) || deleted.count(key) ? kStreamDeleted : 0;
    if (auto it = streams.find(key); it != streams.end()) {
      slot.next_version = it->second.next_version | bit;
      slot.last_position = it->second.last_position;
      streams.erase(it);
    } else if (slot.last_position != kNoPosition && slot.last_position >= retained) {
      slot.next_version = bit;
      slot.last_position = kNoPosition;
    } else {
      slot.next_version = SlotVersion(word) | bit;
    }
    if (SlotVersion(slot.next_version) > 0 || bit) ++stream_count;
    deleted.erase(key);
  }
  for (const auto& [key, w] : streams) {  // slots whose page never reached the disk
    StreamSlot* slot = InsertStream(key.lo, key.hi);
    if (!slot) return ResourceExhausted("rebuilding the stream table of '" + dir_ + "': the table is full");
    slot->next_version = w.next_version | (deleted.count(key) ? kStreamDeleted : 0);
    slot->last_position = w.last_position;
    deleted.erase(key);
    ++stream_count;
  }
  for (const auto& key : deleted) {  // tombstones of streams with no slot
    if (StreamSlot* slot = InsertStream(key.lo, key.hi)) {
      slot->next_version = kStreamDeleted;
      ++stream_count;
    }
  }

  // The dedup window: ids older than the retained log as the ring holds them, then the walked ids, in order.
  const uint64_t window = geo_.dedup_window;
  std::vector<DedupRingEntry> kept;
  for (uint64_t i = 0; i < window; ++i) {
    const DedupRingEntry& e = ring_[i];
    if (e.position != 0 && e.position < retained) kept.push_back(e);
  }
  std::sort(kept.begin(), kept.end(), [](const DedupRingEntry& a, const DedupRingEntry& b) { return a.position < b.position; });
  kept.insert(kept.end(), ids.begin(), ids.end());
  if (kept.size() > window) kept.erase(kept.begin(), kept.end() - static_cast<ptrdiff_t>(window));
  std::memset(static_cast<void*>(ring_), 0, window * sizeof(DedupRingEntry));
  std::copy(kept.begin(), kept.end(), ring_);
  ctl_->dedup_count = kept.size();
  DedupRebuild();

  // The time index and the counters.
  std::memset(static_cast<void*>(time_index_), 0, geo_.time_index_slots * sizeof(TimeIndexSlot));
  for (const auto& [seg, t] : newest_in_segment) {
    time_index_[seg % geo_.time_index_slots] = {seg + 1, t};
  }
  ctl_->newest_occurred_at_ns = newest;
  ctl_->stream_count = stream_count;
  if (first == 0) {  // with retired segments, the counters also count what was retired: kept as they are
    ctl_->accepted_events = events;
    ctl_->accepted_frames = accepted_frames;
    ctl_->rejected_frames = rejected_frames;
    ctl_->corrupt_frames = corrupt_frames;
  }
  ctl_->journal_frame = kNoPosition;
  A(ctl_->lease).store(0, std::memory_order_relaxed);
  A(ctl_->resolved).store(decided_end % S == 0 ? decided_end + kSegmentHeaderSize : decided_end, std::memory_order_release);
  A(ctl_->durable_position).store(std::min(durable, decided_end), std::memory_order_relaxed);
  ++recovery_.tables_rebuilt;
  return control_file_.Sync(0, control_file_.size());
}

}  // namespace hfe::store
