// Consumer groups: several handler processes share one durable subscription. Streams are pinned to
// partitions by hash; a partition belongs to one member at a time and reaches it in log order, so each
// stream is handled in version order while different streams run in parallel. One member at a time is
// the dispatcher: it reads the log, filters on frame headers and pushes work into each member's shared
// ring. A dispatcher silent past the liveness timeout loses the role, but its successor dispatches only
// once it has left Dispatch (or its process is gone), so a ring never has two producers. When a member
// dies (its process is gone, or silent past the liveness timeout) its partitions move to the survivors and
// its unacknowledged events are delivered again, also when a new process has already taken its slot; a
// joining member receives partitions once their previous owner has drained them. An event whose handler
// fails past the retry budget is parked in the stream "$parked-<group>" with the error text, and
// acknowledged.
//
//   auto m = hfe::store::GroupMember::Join(*store, "audit", {});
//   for (;;) {
//     auto n = (*m)->Poll([](const hfe::store::EventView& e) { return Handle(e); });  // Status per event
//     if (n.ok() && *n == 0) (*m)->Wait(10'000'000);
//   }
//
// Thread safety: a GroupMember is used by one thread at a time.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ipc/status.h"
#include "store/event_store.h"
#include "store/subscription.h"

namespace hfe::store {

struct GroupOptions {
  std::vector<uint32_t> types;      // event types to deliver; empty: all
  std::string stream_prefix;
  SubscriptionOptions::Start start = SubscriptionOptions::Start::kBeginning;
  uint64_t position = 0;
  int64_t timestamp_ns = 0;
  // Used when the group is created:
  uint32_t partitions = 64;          // 1..256
  int64_t liveness_timeout_ms = 3000;
  uint32_t ring_capacity = 4096;     // work items queued per member
  uint32_t retry_budget = 3;         // handler attempts before an event is parked
};

struct GroupInfo {
  std::string name;
  uint64_t cursor = 0;               // everything before it is acknowledged in every partition
  int members = 0;                   // live members
  int leader_pid = 0;
  uint64_t handled = 0, failed = 0, parked = 0;
  uint64_t dispatch_position = 0;
};

struct GroupState;

class GroupMember {
 public:
  using Handler = std::function<Status(const EventView&)>;

  ~GroupMember();  // leaves the group; its partitions move on
  GroupMember(const GroupMember&) = delete;
  GroupMember& operator=(const GroupMember&) = delete;

  // Joins (creating the group on first use). At most 16 members.
  static Result<std::unique_ptr<GroupMember>> Join(EventStore& store, std::string_view group, const GroupOptions& options);
  static Result<GroupInfo> Info(const EventStore& store, std::string_view group);
  // The parked events of a group, oldest first (views of the ParkedEvent records).
  static Status ReadParked(const EventStore& store, std::string_view group, const EventStore::Visitor& visit);
  // Parks `e` for `owner` (a group, or a subscription's handler): appends a ParkedEvent with the error text to
  // "$parked-<owner>". The record's id derives from the event's, so parking the same event twice is idempotent.
  static Status Park(EventStore& store, std::string_view owner, const EventView& e, const Status& error, int attempts);

  struct ReplayResult {
    uint64_t replayed = 0;  // parked events handed to the handler again
    uint64_t succeeded = 0;
    uint64_t reparked = 0;  // failed again: parked anew (after the others)
  };
  // Sends the events parked so far (not yet replayed) through `handle`, in order; a failure parks the event
  // again. Durable: a replay interrupted midway resumes after the last replayed one.
  Result<ReplayResult> ReplayParked(const Handler& handle);

  // Dispatches (when this member holds the role) and handles up to `max` events from this member's queue.
  // Returns how many were handled or parked.
  Result<size_t> Poll(const Handler& handle, size_t max = 256);
  // Sleeps briefly when there was nothing to do.
  void Wait(int64_t timeout_ns);
  // True when the whole group is caught up: every event its filter selects, up to the log's resolved end,
  // was dispatched and acknowledged (its lag is 0). While false, a member whose Poll finds nothing may still
  // be given work (the partitions of a member that died, leaves or is silent past the liveness timeout).
  bool CaughtUp() const;

  int index() const;
  bool dispatching() const;

 private:
  explicit GroupMember(std::unique_ptr<GroupState> s);
  std::unique_ptr<GroupState> s_;
};

}  // namespace hfe::store
