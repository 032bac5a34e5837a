// Durable subscriptions: a named cursor in the store's control region that advances only on ack
// (at-least-once), with a header-only filter (event types, stream prefix), any start point, and a wait
// strategy. A handler process that is killed and restarted resumes after its last ack: only the unacked
// tail is delivered again. Catch-up and live are one read of the log, so the switch has no gap and no
// duplicate. Producers never wait for subscribers: a subscriber that stops reading only grows its lag.
//
//   auto sub = hfe::store::Subscription::Open(*store, "audit", {.types = {1, 3}});
//   for (;;) {
//     auto n = (*sub)->Poll([&](const hfe::store::EventView& e) { handle(e); return true; });
//     if (n.ok() && *n == 0) (*sub)->Wait(100'000'000);
//     (*sub)->AckDelivered();
//   }
//
// Thread safety: a Subscription is used by one thread at a time. One attached member per subscription.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ipc/status.h"
#include "store/event_store.h"

namespace hfe::store {

enum class WaitStrategy { kSpin, kYield, kPark };

struct SubscriptionOptions {
  std::vector<uint32_t> types;   // event type numbers to deliver; empty: all
  std::string stream_prefix;     // deliver only streams whose name starts with it; empty: all but the
                                 // store's own streams, whose names start with '$' (e.g. parked events)
  enum class Start { kBeginning, kEnd, kPosition, kTimestamp } start = Start::kBeginning;
  uint64_t position = 0;         // with kPosition
  int64_t timestamp_ns = 0;      // with kTimestamp: the first event that occurred at or after it
  WaitStrategy wait = WaitStrategy::kPark;
};

struct SubscriptionInfo {
  std::string name;
  uint64_t cursor = 0;          // everything before it is acknowledged
  uint64_t lag_bytes = 0;       // resolved watermark minus cursor
  uint64_t delivered = 0;
  uint64_t acked = 0;
  uint64_t parked = 0;
  int member_pid = 0;           // 0: no member attached
  bool member_alive = false;
  std::vector<uint32_t> types;
  std::string stream_prefix;
  bool group = false;           // a consumer group (see consumer_group.h): members and parked are its own
};

struct SubscriptionState;

class Subscription {
 public:
  ~Subscription();  // detaches the member (the durable cursor stays)
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;

  // Creates the named subscription with `options`, or resumes it: then its stored filter and cursor hold,
  // and asking for another filter is an error. Refused while another live process is attached.
  static Result<std::unique_ptr<Subscription>> Open(EventStore& store, std::string_view name,
                                                    const SubscriptionOptions& options);
  static Result<std::vector<SubscriptionInfo>> List(const EventStore& store);
  static Status Delete(EventStore& store, std::string_view name);

  // Delivers up to `max` matching events after those delivered so far; returns how many. The views stay
  // valid while the store is open. A visitor returning false stops; that event is delivered again.
  Result<size_t> Poll(const EventStore::Visitor& visit, size_t max = 256);
  // Waits, with the subscription's strategy, until more events may be there, at most `timeout_ns`.
  void Wait(int64_t timeout_ns);
  // Acknowledges everything delivered so far (and what the filter skipped before it).
  void AckDelivered();
  // Acknowledges every event up to and including `position`.
  void Ack(uint64_t position);

  const std::string& name() const;
  uint64_t cursor() const;           // durable: everything before it is acknowledged
  uint64_t lag_bytes() const;

 private:
  explicit Subscription(std::unique_ptr<SubscriptionState> state);
  std::unique_ptr<SubscriptionState> s_;
};

}  // namespace hfe::store
