// Workflow handlers: they turn domain events into commands on the command bus, for the command-handling
// process (the provider) to act on.
//
//   request workflow: RequestCreated (provision)          -> StartProvisioning
//                     RequestCompleted                    -> ConfirmRequest (and CleanupRequest when partial)
//                     RequestFailed, RequestTimeout,
//                     RequestStatusChanged to cancelled   -> CleanupRequest
//   machine workflow: MachineCreated                      -> StartMonitoring
//                     MachineStatusChanged to running     -> MarkMachineReady
//                     MachineTerminated, or status
//                     changed to terminated               -> CleanupMachine
//
// Commands are idempotent on the provider's side, so an event redelivered after a crash of the handler
// process may send its command again without harm; these handlers therefore keep no checkpoint. A full bus
// fails Handle() with Unavailable, so the dispatcher retries with backoff and parks the event past its budget.
#pragma once

#include <flatbuffers/flatbuffers.h>

#include <memory>
#include <string>

#include "handlers/handler.h"
#include "handlers/workflow/command_bus.h"

namespace hfe::handlers {

// What both workflows share: a command sink and a builder reused between events (a handler runs on one
// worker at a time).
class WorkflowHandler : public Handler {
 protected:
  explicit WorkflowHandler(std::unique_ptr<CommandSink> bus) : bus_(std::move(bus)) {}
  // Sends the command in b_ with the event's correlation id and position as its cause.
  Status Send(const Event& e, schema::CommandBody type, flatbuffers::Offset<void> body);
  std::unique_ptr<CommandSink> bus_;
  flatbuffers::FlatBufferBuilder b_;
};

class RequestWorkflowHandler : public WorkflowHandler {
 public:
  explicit RequestWorkflowHandler(std::unique_ptr<CommandSink> bus) : WorkflowHandler(std::move(bus)) {}
  std::string_view name() const override { return "request-workflow"; }
  bool CanHandle(const Event& e) const override;
  Status Handle(const Event& e) override;
  // Registers for the request events above.
  static void RegisterIn(Registry& r, std::shared_ptr<RequestWorkflowHandler> h);

};

class MachineWorkflowHandler : public WorkflowHandler {
 public:
  explicit MachineWorkflowHandler(std::unique_ptr<CommandSink> bus) : WorkflowHandler(std::move(bus)) {}
  std::string_view name() const override { return "machine-workflow"; }
  bool CanHandle(const Event& e) const override;
  Status Handle(const Event& e) override;
  static void RegisterIn(Registry& r, std::shared_ptr<MachineWorkflowHandler> h);

};

// Opens two senders on the store's command bus and registers both workflow handlers.
Status RegisterWorkflowHandlers(Registry& r, const std::string& store_dir, const CommandBusOptions& o = {});

}  // namespace hfe::handlers
