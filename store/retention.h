// Retention: segments the store no longer needs are retired — closed, unmapped and unlinked — so the log
// stays bounded. A segment may go once it lies wholly before the newest snapshot (replay starts there) and
// before every durable subscription's cursor (nothing unacknowledged is ever lost). A subscription that lags
// more than a configured limit either holds its segments (kHold; reported) or, when no live process is
// attached to it, is dropped with the reason reported (kDrop). Consumer groups always hold.
//
// After a retirement, reads start at the first retained segment: ReadAll from 0 begins there, ReadStream
// returns the stream's retained events, and an aggregate whose early events are gone loads from the
// snapshot plus its tail. A view of an event in a retired segment stays valid in a process until that process
// calls EventStore::ReleaseRetired() (the retiring process does so at once; handler hosts do so when idle,
// as they hold no views below their cursor, which retention never passes).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "store/event_store.h"

namespace hfe::store {

struct RetentionOptions {
  uint64_t max_lag_bytes = 0;                  // a subscription further behind the log's end is lagging; 0: never
  enum class Lagging { kHold, kDrop } lagging = Lagging::kHold;
};

struct RetentionReport {
  uint64_t retain_from = 0;           // the position before which whole segments were retired
  uint64_t first_segment = 0;         // the oldest segment left
  uint64_t segments_retired = 0;
  uint64_t bytes_freed = 0;
  std::string held_by;                // what kept retention from going further: "snapshot", "subscription X", ...
  std::vector<std::string> dropped;   // subscriptions dropped by the lag policy, each with its reason
  std::vector<std::string> holding;   // lagging subscriptions held (kHold, a live member, or a group)
};

// Applies the lag policy, then retires every segment wholly before min(snapshot_position, every remaining
// durable cursor). Never retires the segment the resolved watermark is in.
Result<RetentionReport> RetireSegments(EventStore& store, uint64_t snapshot_position, const RetentionOptions& o);

}  // namespace hfe::store
