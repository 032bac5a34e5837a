// Log: the engine behind EventStore — mappings, claim/commit, the resolver, readers, recovery, verify.
// Internal; callers use store/event_store.h.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ipc/region.h"
#include "ipc/status.h"
#include "store/event_store.h"
#include "store/internal/hash.h"
#include "store/log_format.h"
#include "store/subscription.h"

namespace hfe::store {

// Where an incremental reader stands: the frame to read next, and the first position to deliver from it.
struct ReadCursor {
  uint64_t frame = 0;
  uint64_t from = 0;
  bool positioned = false;  // false: `from` is set, `frame` is found on the first read
  uint64_t stall_at = ~0ull;  // watermark seen without progress, and since when
  int64_t stall_since = 0;
  uint32_t idle_polls = 0;    // polls that found nothing new (helping the resolver is tried every 64th)
};

// Header-only filter: a set of event types (none set: all) and a stream-name prefix. Streams whose names
// start with '$' are the store's own (parked events): only a prefix that starts with '$' selects them.
struct EventFilter {
  uint64_t types[4] = {0, 0, 0, 0};
  std::string_view prefix;
  bool AnyType() const { return (types[0] | types[1] | types[2] | types[3]) == 0; }
  bool Matches(uint32_t type, std::string_view stream) const {
    if (!AnyType() && (type >= 256 || !(types[type >> 6] >> (type & 63) & 1))) return false;
    if (!stream.empty() && stream[0] == '$' && (prefix.empty() || prefix[0] != '$')) return false;
    return stream.substr(0, prefix.size()) == prefix;
  }
};

class Log;
// A read section for its scope (see Log::EnterRead): views made inside it show a payload whole, or redacted.
class ReadSection {
 public:
  explicit ReadSection(const Log& log);
  ~ReadSection();
  ReadSection(const ReadSection&) = delete;
  ReadSection& operator=(const ReadSection&) = delete;
  // Ends the section and begins another: views made before are no longer covered.
  void Renew();
  // True when this thread holds a read section of any store.
  static bool InsideAny();

 private:
  const Log& log_;
  format::ReaderSlot* slot_;
};

// Subscription slots (subscription.cc; callers hold the admin lock to change them).
// The active slot named `name`, or null; the first free slot, or null.
format::SubscriptionSlot* FindSubscriptionSlot(Log& log, std::string_view name);
format::SubscriptionSlot* FreeSubscriptionSlot(Log& log);
// Where a new subscription starts: the beginning, the live end, a position, or the first event at or after
// a time.
Result<uint64_t> StartPosition(const Log& log, SubscriptionOptions::Start start, uint64_t position, int64_t timestamp_ns);
// The filter's validation shared by subscriptions and groups: a type bitmap from type numbers (each 1..255)
// and a prefix of at most kMaxStreamPrefix bytes.
Status CheckFilter(const std::vector<uint32_t>& types, std::string_view prefix, uint64_t bitmap[4]);
// Fills a free slot and publishes it (its state is written last, with release).
void PublishSubscriptionSlot(format::SubscriptionSlot* slot, std::string_view name, uint64_t start,
                             const uint64_t types[4], std::string_view prefix, uint8_t kind);
// Locates and checks the accepted record at `pos` (reader.cc); false when there is none.
bool ViewAt(const Log& log, uint64_t pos, EventView* v);

class Log {
 public:
  ~Log();
  static Result<std::unique_ptr<Log>> Open(const std::string& dir, const StoreOptions& options);

  // ---- append (appender.cc)
  // `record_flags` go into every record's header (the store's own writers: kRecordTombstone).
  Result<AppendResult> Append(std::span<const StreamAppend> appends, std::span<uint64_t> positions,
                              uint16_t record_flags = 0);
  // Validates, writes and commits a batch without waiting for its verdict. `pipelined`: the caller will
  // collect the verdict later, and the producer resolves committed frames in runs (see ResolveCommitted).
  Result<AppendTicket> Commit(std::span<const StreamAppend> appends, uint16_t record_flags, bool pipelined);
  // Waits for a committed batch's verdict (resolving frames itself when the role is free).
  Result<AppendResult> Await(const AppendTicket& ticket, std::span<uint64_t> positions);
  // The verdict when decided (helping cheaply once), nullopt when not yet.
  std::optional<Result<AppendResult>> TryGet(const AppendTicket& ticket, std::span<uint64_t> positions);
  // Returns once every batch committed before the call is decided.
  Status Flush();

  // ---- resolver (resolver.cc)
  // Returns once the resolved watermark is at or past `end` (resolving frames itself when the role is free).
  Status WaitResolved(uint64_t end, uint64_t own_frame = format::kNoPosition);
  // How much a reader helps the resolver:
  //   kCheap     resolve a committed frame when the role is free; no system call, never waits (poll loops)
  //   kTakeOver  also take the role over from a dead holder; never waits on a live writer (one-shot reads)
  //   kUnblock   also wait out or pad the frame at the watermark whose writer died or stalled past the
  //              unblock timeout (a subscriber that has seen no progress for a millisecond)
  enum class Help { kCheap, kTakeOver, kUnblock };
  void HelpResolve(Help help = Help::kTakeOver);

  // ---- reading (reader.cc)
  // Calls visit for each accepted event at or after `from`, up to the resolved watermark.
  Status Scan(uint64_t from, const EventStore::Visitor& visit, bool check_crc = false) const;
  Status ReadStream(std::string_view stream, uint64_t from_version, const EventStore::Visitor& visit) const;
  Status ReadSince(int64_t since, const EventStore::Visitor& visit) const;
  Status ReadLast(uint64_t n, const EventStore::Visitor& visit) const;
  StreamInfo GetStream(std::string_view stream) const;
  // Position of the first frame at or after `pos` (frames are found by walking the segment from its start).
  Result<uint64_t> FrameStartAtOrAfter(uint64_t pos) const;
  // Delivers up to `max` accepted events matching `filter` from the cursor to the resolved watermark and
  // advances the cursor past them (and past what the filter skipped). No allocation.
  Result<size_t> ReadBatch(ReadCursor& cursor, size_t max, const EventFilter& filter,
                           const EventStore::Visitor& visit) const;
  // First position of an event that occurred at or after `since` (the resolved watermark when none).
  Result<uint64_t> PositionAtTime(int64_t since) const;
  // Waits until the resolved watermark passes `position` or the timeout ends: 0 spin, 1 yield, 2 futex park.
  void WaitForResolved(uint64_t position, int strategy, int64_t timeout_ns) const;

  // ---- recovery and verification (recovery.cc)
  Status Recover(RecoveryMode mode);
  Result<VerifyReport> Verify() const;
  Result<EventStore::RedactResult> Redact(uint64_t position);

  // ---- retention (retention.cc)
  // Retires every segment wholly before `position` (not the resolved watermark's): advances first_segment,
  // unlinks their files and unmaps them in this process. Returns how many were retired.
  Result<uint64_t> RetireBefore(uint64_t position);
  // Unmaps this process's mappings of retired segments (no thread of it may hold a view into them).
  void ReleaseRetired() const;
  uint64_t metadata_flags() const {
    return std::atomic_ref<uint64_t>(ctl_->metadata_flags).load(std::memory_order_acquire);
  }
  void AddMetadataFlags(uint64_t f) { std::atomic_ref<uint64_t>(ctl_->metadata_flags).fetch_or(f, std::memory_order_acq_rel); }
  uint64_t first_segment() const {
    return std::atomic_ref<uint64_t>(ctl_->first_segment).load(std::memory_order_acquire);
  }

  StoreStats Stats() const;
  const RecoveryReport& recovery_report() const { return recovery_; }
  const std::string& dir() const { return dir_; }
  uint64_t resolved() const { return std::atomic_ref<uint64_t>(ctl_->resolved).load(std::memory_order_acquire); }
  uint64_t tail() const { return std::atomic_ref<uint64_t>(ctl_->tail).load(std::memory_order_acquire); }
  uint64_t segment_size() const { return seg_size_; }
  format::ControlHeader* control() const { return ctl_; }
  format::SubscriptionSlot* subscription_table() const { return subscriptions_; }
  uint64_t subscription_slots() const { return geo_.subscription_slots; }

  // Segment base address, mapping (and creating when `create`) it on first use. Null when it does not exist.
  uint8_t* Segment(uint64_t index, bool create) const;
  // The same, with the reason when it cannot be mapped (missing, no space, a foreign file).
  Result<uint8_t*> MapSegment(uint64_t index, bool create) const;
  // Frame state word at `pos`.
  std::atomic_ref<uint64_t> StateAt(uint8_t* frame) const {
    return std::atomic_ref<uint64_t>(reinterpret_cast<format::FrameHeader*>(frame)->state);
  }
  // Validates a committed DATA frame's bounds (not its CRC). Returns an empty string when sane.
  std::string CheckFrameBounds(const uint8_t* frame, uint32_t length) const;
  bool CheckFrameCrc(uint64_t pos, const uint8_t* frame, uint32_t length) const;
  uint32_t ComputeFrameCrc(uint64_t segment_index, const uint8_t* frame, uint32_t length) const;

  // Read sections (reader.cc): a reader holds one while it makes views and its visitor runs; a redaction
  // waits out every section that began before it flagged the record. Returns what LeaveRead takes.
  format::ReaderSlot* EnterRead() const;
  void LeaveRead(format::ReaderSlot* slot) const;
  // Waits until every read section in progress now has ended (or its process died), at most `timeout_ns`.
  // On a timeout, the pid of a reader still inside.
  Result<uint32_t> WaitOutReaders(int64_t timeout_ns) const;

  // Stream table lookup (any process; the resolver is the only writer).
  format::StreamSlot* FindStream(uint64_t hash_lo, uint64_t hash_hi) const;

 private:
  Log() = default;
  friend class EventStore;

  Status Create(const StoreOptions& o);
  Status Attach(const StoreOptions& o);
  std::string SegmentPath(uint64_t index) const;

  // appender.cc
  Result<uint64_t> Claim(uint32_t length, uint8_t** frame_out);
  // The frame of a ticket this process committed to this store, or null when the ticket names none.
  uint8_t* TicketFrame(const AppendTicket& t) const;
  void ResolveCommitted();
  // Await's body; `trust_crc`: the frame was checksummed by this thread a moment ago (Append).
  Result<AppendResult> AwaitFrame(const AppendTicket& t, std::span<uint64_t> positions, bool trust_crc);
  // Asks the preparer thread to map segment `index` ahead of use: an appender's request creates it and
  // warms its pages for writing, a reader's maps it once an appender has created it.
  void PrepareSegment(uint64_t index, bool for_append) const;
  void TouchSegment(uint64_t index) const;

  // resolver.cc
  bool TryAcquireLease(bool check_dead);
  void ReleaseLease();
  void Repair();
  // Resolves frames from the watermark on. Stops at the tail, or at a frame still in progress when
  // `wait_until` is at or before it (then the caller's own frame is already decided). Lease held.
  // `own_frame` is a frame this thread wrote and checksummed a moment ago: its CRC is not re-computed.
  void ResolveLoop(uint64_t wait_until, uint64_t own_frame = format::kNoPosition);
  void ResolveFrame(uint64_t pos, uint8_t* frame, uint32_t length, bool trusted);
  void ApplyFrame(uint64_t pos, uint8_t* frame);
  // Checks a frame's bounds; when they fail, marks it corrupt (whatever verdict it had) and returns false.
  bool MarkCorruptUnlessSane(uint8_t* frame, uint32_t length);
  // Hashes the names of a frame's stream entries into entry_hashes_ (lease held; bounds already checked).
  void HashEntries(const uint8_t* frame);
  // The hash of the stream a frame hard-deletes (a tombstone record of "$meta-<stream>"), if it is one.
  std::optional<internal::Hash128> TombstoneTarget(const uint8_t* frame) const;
  void PublishResolved(uint64_t pos);
  // Journals the counters before a run of frames that starts at the watermark `run_start`.
  void WriteJournal(uint64_t run_start);
  // Wakes processes parked on the watermark, if any (one fence and one load when none is).
  void WakeWaiters() const;
  format::StreamSlot* InsertStream(uint64_t hash_lo, uint64_t hash_hi);
  uint64_t DedupLookup(uint64_t hi, uint64_t lo) const;
  void DedupInsert(uint64_t hi, uint64_t lo, uint64_t ring_slot);
  void DedupRemove(uint64_t hi, uint64_t lo, uint64_t ring_slot);
  // Producer-side: touches the cache lines the resolver will need for this batch.
  void Prefetch(std::span<const StreamAppend> appends) const;
  void DedupRebuild();
  // Syncs the log from the durable checkpoint to `to` (at most the watermark), then advances the checkpoint
  // and syncs the control file.
  void SyncResolved(uint64_t to);
  void SyncSegments(uint64_t from, uint64_t to) const;

  // rebuild.cc: a store on disk that was not closed cleanly gets its tables rebuilt from the log on open.
  bool OnTmpfs() const;
  Status RebuildTables(RecoveryMode mode);
  // The last process to leave a disk store syncs every segment and the control file and marks it clean.
  void MarkCleanIfLast();

  std::string dir_;
  StoreOptions options_;
  // The control region's geometry, copied and checked once at attach; never re-read from shared memory
  // (the segment size is seg_size_).
  struct Geometry {
    uint64_t stream_slots = 0, dedup_window = 0, dedup_slots = 0, time_index_slots = 0;
    uint64_t subscription_slots = 0, unblock_timeout_ns = 0, reader_slots = 0;
    uint32_t sync_policy = 0, sync_interval_ms = 0;
  } geo_;
  int lock_fd_ = -1;
  ipc::MappedFile control_file_;
  format::ControlHeader* ctl_ = nullptr;
  format::StreamSlot* streams_ = nullptr;
  format::DedupHashSlot* dedup_ = nullptr;
  format::DedupRingEntry* ring_ = nullptr;
  format::TimeIndexSlot* time_index_ = nullptr;
  format::SubscriptionSlot* subscriptions_ = nullptr;
  format::ReaderSlot* readers_ = nullptr;
  uint64_t seg_size_ = 0;
  uint64_t stream_mask_ = 0;
  uint64_t dedup_mask_ = 0;
  uint64_t max_streams_ = 0;
  RecoveryReport recovery_;

  // Per-process segment mappings. Lookups go through a direct-mapped table of pointers to immutable
  // (index, base) nodes, read without a lock: one acquire load gives both fields together, so a lookup can
  // never pair one segment's index with another's base. Misses (a colliding slot) are served from `mapped_`
  // under map_mu_ without mapping again. Nodes are never freed (a lookup may still hold one), 16 bytes per
  // segment ever mapped; the mappings themselves go when retention retires their segment.
  static constexpr size_t kMapSlots = 4096;
  struct SegmentNode {
    uint64_t index;
    uint8_t* base;
  };
  struct Mapped {
    ipc::MappedFile file;
    const SegmentNode* node;
  };
  mutable std::array<std::atomic<const SegmentNode*>, kMapSlots> map_slots_{};
  mutable std::mutex map_mu_;
  mutable std::deque<SegmentNode> nodes_;
  mutable std::map<uint64_t, Mapped> mapped_;

  // Resolver scratch (used only by the thread holding the lease).
  struct StreamScratch {
    format::StreamSlot* slot;
    uint64_t next_version;
    uint64_t last_position;
  };
  std::vector<StreamScratch> scratch_;
  std::vector<internal::Hash128> entry_hashes_;  // per stream entry of the frame being resolved
  std::mutex lease_mu_;   // threads of this process take the shared lease one at a time
  std::atomic<uint32_t> pipelined_since_resolve_{0};
  uint64_t ticket_nonce_ = 0;  // drawn at open; tickets of another open store are refused

  // Segment preparation off the append path: a per-process thread creates and pre-faults the next segment.
  mutable std::thread prepare_thread_;
  mutable std::mutex prepare_mu_;
  mutable std::condition_variable prepare_cv_;
  mutable uint64_t prepare_append_wanted_ = 0;  // segment plus one (0: none), under prepare_mu_
  mutable uint64_t prepare_read_wanted_ = 0;
  bool stop_prepare_ = false;
  std::atomic<bool> stop_prepare_flag_{false};  // read by the touch loop without the lock
  mutable std::atomic<uint64_t> prepare_requested_append_{0};
  mutable std::atomic<uint64_t> prepare_requested_read_{0};

  // Interval sync.
  std::thread sync_thread_;
  std::atomic<bool> stop_sync_{false};
  bool on_disk_ = false;  // not on tmpfs: power loss can tear what the kernel wrote back
};

}  // namespace hfe::store
