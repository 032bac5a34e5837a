// EventStore: the public API of an hfevents store directory.
//
//   auto store = hfe::store::EventStore::Open("/dev/shm/hfevents", {.create_if_missing = true});
//   hfe::store::EventData ev{hfe::store::EventId::Random(), type, 0, payload};
//   auto r = (*store)->Append("request-42", hfe::store::ExpectedVersion::NoStream(), {&ev, 1});
//
// Any number of processes may open the same store and append or read concurrently. Appends are atomic per
// call (one or several streams), ordered, idempotent by event id, and durable to the limits of the sync
// policy. Thread safety: an EventStore may be shared by the threads of a process; every method is safe to call
// concurrently.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "ipc/status.h"
#include "store/types.h"

namespace hfe::store {

enum class RecoveryMode {
  kPointInTime,  // default: stop at the first bad frame, drop it and everything after it, report it
  kStrict,       // refuse to open a store with any damaged frame past the resolved watermark
  kSalvage,      // skip damaged frames and keep what follows them
};

enum class SyncPolicy { kNone, kInterval, kEveryAppend };

struct StoreOptions {
  bool create_if_missing = false;
  // Geometry, used only when the store is created (later opens take the store's own values).
  uint64_t segment_size = 64ull << 20;     // power of two, 1 MiB .. 1 GiB
  uint64_t stream_capacity = 1u << 20;     // distinct streams the table holds
  uint64_t dedup_window = 1u << 20;        // the last N accepted events are deduplicated by id
  int64_t unblock_timeout_ms = 1000;       // a frame stalled longer than this is padded
  SyncPolicy sync = SyncPolicy::kNone;     // for disk paths: kInterval or kEveryAppend bound power-loss loss
  int sync_interval_ms = 100;
  mode_t mode = 0600;                      // 0660 grants the group
  // Every open.
  RecoveryMode recovery = RecoveryMode::kPointInTime;
  bool populate = true;                    // pre-fault mappings
  int64_t attach_timeout_ms = 5000;        // wait for a concurrent creator to publish the store
};

struct RecoveryReport {
  bool ran = false;               // this open was the only process attached, so it checked the tail
  uint64_t frames_checked = 0;
  uint64_t frames_padded = 0;     // stalled frames of dead writers turned into padding
  uint64_t frames_dropped = 0;    // point-in-time: frames dropped from the first damage on
  uint64_t bytes_dropped = 0;
  uint64_t frames_skipped = 0;    // salvage: damaged frames skipped
  uint64_t tables_rebuilt = 0;    // 1: a disk store not closed cleanly had its tables rebuilt from the log
  std::string damage;             // the first damage found, empty when none
};

struct StoreStats {
  uint64_t events = 0;
  uint64_t streams = 0;
  uint64_t accepted_frames = 0;
  uint64_t rejected_frames = 0;
  uint64_t corrupt_frames = 0;
  uint64_t padded_frames = 0;
  uint64_t first_segment = 0;
  uint64_t segments = 0;
  uint64_t bytes = 0;             // log bytes from the first segment's start to the tail
  uint64_t tail_position = 0;
  uint64_t resolved_position = 0;
  uint64_t segment_size = 0;
  uint64_t dedup_window = 0;
  uint64_t stream_capacity = 0;
  uint64_t repairs = 0;
};

struct VerifyReport {
  uint64_t frames = 0;
  uint64_t events = 0;
  uint64_t rejected_frames = 0;
  uint64_t padding_frames = 0;
  uint64_t streams = 0;
  uint64_t damaged = 0;           // frames with a bad CRC, bad bounds or a wrong resolution
  std::vector<std::string> problems;  // one line each, at most 100
  bool ok() const { return damaged == 0 && problems.empty(); }
};

class Log;
namespace format {
struct ReaderSlot;
}

struct StreamMetadata {
  uint64_t max_count = 0;        // keep the newest N events visible (0: no limit)
  int64_t max_age_ns = 0;        // hide events older than this (0: no limit)
  uint64_t truncate_before = 0;  // hide versions below this
  bool deleted = false;          // soft-deleted (truncated at the version it had)
  bool hard_deleted = false;     // tombstoned: empty, appends refused
};

class EventStore {
 public:
  ~EventStore();
  EventStore(const EventStore&) = delete;
  EventStore& operator=(const EventStore&) = delete;

  static Result<std::unique_ptr<EventStore>> Open(const std::string& dir, const StoreOptions& options = {});

  // Appends `events` to `stream` atomically. Errors: WrongExpectedVersion (nothing written; the message names
  // the actual version), DuplicateEvent (some but not all ids were appended before), InvalidArgument,
  // ResourceExhausted. Re-appending ids already appended returns already_appended with the original positions.
  // `positions` (optional) receives each event's position. No heap allocation on success.
  Result<AppendResult> Append(std::string_view stream, ExpectedVersion expected, std::span<const EventData> events,
                              std::span<uint64_t> positions = {});
  // Several streams, each with its own expectation, committed as one: all visible or none.
  // last_version in the result is that of the last stream's last event.
  Result<AppendResult> AppendMulti(std::span<const StreamAppend> appends, std::span<uint64_t> positions = {});
  // Pipelined appends. AppendAsync checks and commits a batch as Append does, but returns at once with a
  // ticket instead of waiting for the verdict; batches are decided in the order they were committed, each
  // against its own expectations and ids, so a producer may keep many in flight (exact expected versions of
  // one stream included: batch n+1 expects what batch n will make). Await(ticket) waits for the verdict and
  // returns what Append would have (WrongExpectedVersion, already_appended, ...); TryGet returns it when it
  // is decided and nullopt while it is not, without waiting; Flush returns once every batch committed so far
  // is decided. A ticket stays valid while its segment is in the log; one of another store or process is
  // refused (InvalidArgument). Append is AppendAsync followed by Await.
  Result<AppendTicket> AppendAsync(std::string_view stream, ExpectedVersion expected, std::span<const EventData> events);
  Result<AppendTicket> AppendMultiAsync(std::span<const StreamAppend> appends);
  Result<AppendResult> Await(const AppendTicket& ticket, std::span<uint64_t> positions = {});
  std::optional<Result<AppendResult>> TryGet(const AppendTicket& ticket, std::span<uint64_t> positions = {});
  Status Flush();
  // Stream names are 1..1024 bytes of valid UTF-8 without control characters. Names that begin with '$' are
  // the store's own streams ($meta-, $parked-, $performance, ...): Append and AppendMulti refuse them
  // (InvalidArgument); hfevents' own components write them through AppendSystem, which takes only such names.
  Result<AppendResult> AppendSystem(std::string_view stream, ExpectedVersion expected,
                                    std::span<const EventData> events, std::span<uint64_t> positions = {});
  // Ok when `stream` is a valid stream name; otherwise the reason, naming the first offending byte.
  static Status CheckStreamName(std::string_view stream);
  // The same rule for any name (`what`: "subscription name", "stream prefix"...) of at most `max_bytes`.
  static Status CheckName(std::string_view text, std::string_view what, size_t max_bytes);

  // Reads. The callback returns false to stop early. Only resolved, accepted events are delivered, in
  // position order.
  using Visitor = std::function<bool(const EventView&)>;
  // A stream's events from `from_version`, minus what its metadata excludes (see SetStreamMetadata).
  Status ReadStream(std::string_view stream, uint64_t from_version, const Visitor& visit) const;
  Status ReadAll(uint64_t from_position, const Visitor& visit) const;
  Status ReadSince(int64_t since_wall_ns, const Visitor& visit) const;  // events with occurred_at >= since
  Status ReadLast(uint64_t n, const Visitor& visit) const;              // the newest n, oldest first
  StreamInfo GetStream(std::string_view stream) const;

  // Per-stream retention and deletion, kept as StreamMetadataEvents in "$meta-<stream>" (the newest applies).
  // ReadStream skips what the metadata excludes; a hard-deleted stream also refuses appends.
  Status SetStreamMetadata(std::string_view stream, const StreamMetadata& m);
  // The stream's metadata (all defaults when none was set).
  Result<StreamMetadata> GetStreamMetadata(std::string_view stream) const;
  // Soft: the stream reads as empty (truncated at its current version) until appended to again.
  // Hard: it reads as empty and refuses every append from now on (FailedPrecondition).
  Status DeleteStream(std::string_view stream, bool hard);

  // Redacts the event at `position` in place: zeroes its payload (length and position kept), marks it
  // redacted and recomputes its frame's CRC, so personal data leaves the log without rewriting it. Readers
  // and replay see the event as redacted, its body all zeros. A visitor sees an event whole or redacted,
  // never a mix: the redaction flags the event, waits until every read that may hold a view of it has
  // returned from its visit (or left its ViewScope), then zeroes the bytes. NotFound when no event starts
  // there; already_redacted when it was; Unavailable when a reader held views past 5 s (the event is hidden
  // already; run it again to zero the bytes); FailedPrecondition when called inside a visit or a ViewScope.
  struct RedactResult {
    bool already_redacted = false;
    EventView event;  // the event as it is now
  };
  Result<RedactResult> Redact(uint64_t position);

  // Views handed to a visitor stay whole-or-redacted until the visit returns. A process that hands views on
  // to other threads (a pipeline) holds a ViewScope on the reading thread until those threads are done with
  // them, and renews it between batches: a redaction waits for it. No allocation; not movable.
  class ViewScope {
   public:
    explicit ViewScope(const EventStore& store);
    ~ViewScope();
    ViewScope(const ViewScope&) = delete;
    ViewScope& operator=(const ViewScope&) = delete;
    // Ends the scope and begins another: views received before it are no longer covered.
    void Renew();

   private:
    const Log* log_;
    format::ReaderSlot* slot_;
  };

  // Unmaps this process's mappings of segments retention retired (store/retention.h). Views into them become
  // invalid; call it when this process holds none (a handler host holds none below its cursor).
  void ReleaseRetired() const;

  StoreStats Stats() const;
  // Scans every frame: CRCs, bounds, per-stream version continuity and chains, verdicts re-derived.
  Result<VerifyReport> Verify() const;
  const RecoveryReport& recovery_report() const;
  // Position just past the last resolved frame: everything before it is decided.
  uint64_t ResolvedPosition() const;
  const std::string& dir() const;

  Log& log() { return *log_; }

 private:
  explicit EventStore(std::unique_ptr<Log> log);
  // True when "$meta-<stream>" exists (a table probe; no allocation once the per-thread name buffer grew).
  bool HasMetadata(std::string_view stream) const;
  Status CheckNotTombstoned(std::string_view stream) const;
  Status AppendMetadata(std::string_view stream, const StreamMetadata& m, ExpectedVersion expected);
  std::unique_ptr<Log> log_;
};

}  // namespace hfe::store
