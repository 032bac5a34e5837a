// Replayer: sends the events of a time range (and a type set) through chosen handlers, in log order, and
// reports per handler how many succeeded and failed. A handler's failure is retried, then the event is parked
// for that handler ("$parked-replay.<handler>"); the replay and the other handlers go on.
//
//   handlers::ReplayOptions o;  o.from_ns = ...;  o.types = {RequestFailedEvent};
//   auto report = handlers::Replay(store, registry, o);
#pragma once

#include <csignal>
#include <cstdint>
#include <functional>
#include <vector>

#include "handlers/dispatcher.h"
#include "handlers/handler.h"
#include "store/event_store.h"

namespace hfe::handlers {

struct ReplayOptions {
  int64_t from_ns = 0;                 // occurred_at range, inclusive
  int64_t to_ns = INT64_MAX;
  std::vector<uint32_t> types;         // empty: every type
  DispatcherOptions dispatch = {2, 3, 200, "replay"};
  // Called about every 100 ms with the fraction of the log range scanned and the events replayed so far.
  std::function<void(double done, uint64_t replayed)> progress;
  const volatile std::sig_atomic_t* stop = nullptr;  // stops early when it becomes non-zero
};

struct ReplayReport {
  uint64_t replayed = 0;   // events sent to the handlers
  uint64_t scanned = 0;    // events read (outside the range or types: not sent)
  bool interrupted = false;
  int64_t elapsed_ns = 0;
  std::vector<HandlerStats> handlers;  // processed = succeeded, parked = failed past the retry budget
};

// Replays the log as it is when called (events appended meanwhile are not included).
Result<ReplayReport> Replay(store::EventStore& store, const Registry& registry, const ReplayOptions& o);

}  // namespace hfe::handlers
