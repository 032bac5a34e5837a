// Dispatcher: inside a handler process, hands each event to every handler that serves its type. The reader
// thread calls Dispatch(); handlers run on a worker pool fed through moodycamel queues (a handler always on
// the same worker, so it sees its events in log order, while different handlers of one event run
// concurrently). A failing or throwing handler is retried with exponential backoff, then the event is parked
// for that handler ("$parked-<owner>.<handler>"); the others carry on. CompletedThrough() tells the reader how
// far every handler has finished, i.e. how far the subscription may be acknowledged.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "handlers/handler.h"
#include "handlers/histogram.h"
#include "store/event_store.h"

namespace hfe::handlers {

struct DispatcherOptions {
  int workers = 2;
  int retry_budget = 3;               // attempts per event and handler
  int64_t backoff_initial_us = 200;   // doubled after each failed attempt
  std::string parking_owner = "handlers";
};

struct HandlerStats {
  std::string handler;
  uint64_t processed = 0;   // events handled successfully
  uint64_t failed = 0;      // failed attempts
  uint64_t retried = 0;     // attempts after a failure
  uint64_t parked = 0;
  uint64_t skipped = 0;     // at or before the handler's checkpoint (redelivered)
  double success_rate = 1.0;
  uint64_t latency_p50_ns = 0, latency_p99_ns = 0, latency_max_ns = 0;
  std::map<std::string, uint64_t> processed_by_type;
};

struct DispatcherState;

class Dispatcher {
 public:
  Dispatcher(store::EventStore& store, const Registry& registry, const DispatcherOptions& options);
  ~Dispatcher();  // finishes what was dispatched, then stops the workers
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // Hands an event to its handlers and returns at once. The view must stay valid until the event is finished
  // (views into the store's mapping do). Events whose payload is not a valid envelope, or whose type no
  // handler serves, finish at once.
  void Dispatch(const store::EventView& view);
  // Position just after the newest event that, with every event dispatched before it, all its handlers have
  // finished and made durable; 0 while none has.
  uint64_t CompletedThrough();
  // Waits until everything dispatched so far is finished.
  void Drain();
  // Asks every handler to make what it handled durable (see Handler::Flush); returns the first error.
  Status Flush();
  std::vector<HandlerStats> Stats() const;

 private:
  std::unique_ptr<DispatcherState> s_;
};

}  // namespace hfe::handlers
