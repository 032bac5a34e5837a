// Handlers: what a handler process runs for each event, and the registry that maps event types to them.
//
//   class AuditHandler : public hfe::handlers::Handler {
//     std::string_view name() const override { return "audit"; }
//     hfe::Status Handle(const hfe::handlers::Event& e) override { ... }
//   };
//   registry.RegisterAll(std::make_shared<AuditHandler>(...));          // every event type
//   registry.Register(RequestCompletedEvent, notification_handler);     // one type
//
// Handle() is called from a worker thread, one event at a time per handler, in log order; it may fail
// (a Status) or throw — either is retried with backoff, then the event is parked for that handler; the other
// handlers of the event are not affected.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ipc/status.h"
#include "schemas/events_generated.h"
#include "store/types.h"

namespace hfe::handlers {

// One event as a handler sees it: the stored view (zero-copy) and its verified envelope.
struct Event {
  const store::EventView& view;
  const schema::Envelope& envelope;
  const char* type_name;  // "RequestCreatedEvent"; "Unknown(N)" types never reach handlers
};

class Handler {
 public:
  virtual ~Handler() = default;
  virtual std::string_view name() const = 0;
  // A finer filter than the registration (e.g. only failed status changes).
  virtual bool CanHandle(const Event&) const { return true; }
  virtual Status Handle(const Event& e) = 0;
  // Called once an event failed past its retry budget, before it is parked.
  virtual void OnError(const Event&, const Status&) {}
  // The position of the newest event whose effect this handler has made durable (0: none). Events at or
  // before it are skipped when delivered again (after a crash of the handler process).
  virtual uint64_t Checkpoint() const { return 0; }
  // The position through which this handler's effects are durable (UINT64_MAX: all it handled). The
  // subscription is not acknowledged past it, so a crash redelivers what was only in memory.
  virtual uint64_t DurableThrough() const { return UINT64_MAX; }
  // Makes everything handled so far durable (called when the reader is idle and before exit).
  virtual Status Flush() { return Status::Ok(); }
};

class Registry {
 public:
  // Registers `h` for one event type; the same handler may be registered for several.
  void Register(schema::EventBody type, std::shared_ptr<Handler> h);
  // Registers `h` for every event type.
  void RegisterAll(std::shared_ptr<Handler> h);

  // Handlers of a type, in registration order (each once).
  const std::vector<Handler*>& For(uint32_t type) const;
  // Every distinct handler, in registration order.
  const std::vector<std::shared_ptr<Handler>>& handlers() const { return all_; }
  // Type name -> handler names (for `hostfactory debug-events --show-handler-mappings`).
  std::vector<std::pair<std::string, std::vector<std::string>>> Mappings() const;

 private:
  void Remember(const std::shared_ptr<Handler>& h);
  std::vector<std::shared_ptr<Handler>> all_;
  std::vector<std::vector<Handler*>> by_type_ = std::vector<std::vector<Handler*>>(256);
};

}  // namespace hfe::handlers
