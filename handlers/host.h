// HandlerHost: the loop of a handler process. It reads a durable subscription (alone, or as a member of a
// consumer group), hands every event to the dispatcher, acknowledges only as far as every handler finished
// and made its effects durable, flushes the handlers when idle, and keeps a JSON stats file current.
//
//   handlers::Registry registry;  registry.RegisterAll(audit); ...
//   auto host = handlers::HandlerHost::Open(store, registry, options);
//   Status st = (*host)->Run(&stop_flag);   // until stop_flag, max_events or the idle limit
#pragma once

#include <csignal>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "handlers/dispatcher.h"
#include "handlers/handler.h"
#include "store/event_store.h"
#include "store/subscription.h"

namespace hfe::handlers {

struct HostOptions {
  std::string subscription;             // required
  std::string group;                    // non-empty: join consumer group "<subscription>@<group>"
  store::SubscriptionOptions filter;    // types, stream prefix, start, wait strategy
  DispatcherOptions dispatch;           // parking_owner defaults to the subscription (or group) name
  uint64_t max_events = 0;              // return after this many events (0: no limit)
  int64_t idle_exit_ms = 0;             // return after this long without events (0: never); a group
                                        // member: this long since its whole group was last behind
  std::string stats_path;               // JSON stats file, rewritten about every stats_interval_ms (empty: none)
  int64_t stats_interval_ms = 1000;
  std::function<void()> every_second;   // called from the reader thread about once a second
};

struct HostState;

class HandlerHost {
 public:
  // Opens (or creates) the subscription or joins the group. The registry must outlive the host.
  static Result<std::unique_ptr<HandlerHost>> Open(store::EventStore& store, const Registry& registry,
                                                   const HostOptions& o);
  ~HandlerHost();
  HandlerHost(const HandlerHost&) = delete;
  HandlerHost& operator=(const HandlerHost&) = delete;

  // Runs until *stop becomes non-zero, max_events were dispatched or the idle limit passed; then finishes
  // what was dispatched, flushes every handler and acknowledges. Errors: the store's (damaged log) or a
  // handler's Flush failure.
  Status Run(const volatile std::sig_atomic_t* stop);
  uint64_t dispatched() const;
  std::vector<HandlerStats> Stats() const;
  // The name parked events go under: "$parked-<owner>.<handler>".
  const std::string& owner() const;

 private:
  explicit HandlerHost(std::unique_ptr<HostState> s);
  Status WriteStats(bool final);
  std::unique_ptr<HostState> s_;
};

}  // namespace hfe::handlers
