// Workflow handlers: which event sends which command.
#include "handlers/workflow/workflow_handler.h"

namespace hfe::handlers {

namespace {

using schema::CommandBody;
using schema::EventBody;

bool IsStatus(const flatbuffers::String* s, const char* v) { return s && s->string_view() == v; }

store::EventId Correlation(const Event& e) {
  const schema::Uuid* c = e.envelope.correlation_id();
  return c ? store::EventId{c->hi(), c->lo()} : store::EventId{};
}

}  // namespace

bool RequestWorkflowHandler::CanHandle(const Event& e) const {
  switch (e.envelope.body_type()) {
    case EventBody::RequestCreatedEvent:
      return e.envelope.body_as_RequestCreatedEvent()->request_type() == schema::RequestType::Provision;
    case EventBody::RequestCompletedEvent:
    case EventBody::RequestFailedEvent:
    case EventBody::RequestTimeoutEvent:
      return true;
    case EventBody::RequestStatusChangedEvent:
      return IsStatus(e.envelope.body_as_RequestStatusChangedEvent()->new_status(), "cancelled");
    default:
      return false;
  }
}

Status WorkflowHandler::Send(const Event& e, CommandBody type, flatbuffers::Offset<void> body) {
  return bus_->Send(FinishCommand(b_, type, body, Correlation(e), e.view.position));
}

Status RequestWorkflowHandler::Handle(const Event& e) {
  b_.Clear();
  const schema::Envelope& env = e.envelope;
  switch (env.body_type()) {
    case EventBody::RequestCreatedEvent: {
      auto* c = env.body_as_RequestCreatedEvent();
      auto body = schema::CreateStartProvisioningCommand(b_, b_.CreateString(c->request_id()),
                                                         b_.CreateString(c->template_id()), c->machine_count(),
                                                         c->request_type());
      return Send(e, CommandBody::StartProvisioningCommand, body.Union());
    }
    case EventBody::RequestCompletedEvent: {
      auto* c = env.body_as_RequestCompletedEvent();
      auto body = schema::CreateConfirmRequestCommand(b_, b_.CreateString(c->request_id()));
      HFE_RETURN_IF_ERROR(Send(e, CommandBody::ConfirmRequestCommand, body.Union()));
      if (!IsStatus(c->completion_status(), "partial")) return Status::Ok();
      b_.Clear();
      auto cleanup = schema::CreateCleanupRequestCommand(b_, b_.CreateString(c->request_id()),
                                                         b_.CreateString("request completed partially"));
      return Send(e, CommandBody::CleanupRequestCommand, cleanup.Union());
    }
    case EventBody::RequestFailedEvent: {
      auto* c = env.body_as_RequestFailedEvent();
      auto body = schema::CreateCleanupRequestCommand(b_, b_.CreateString(c->request_id()),
                                                      b_.CreateString("request failed"));
      return Send(e, CommandBody::CleanupRequestCommand, body.Union());
    }
    case EventBody::RequestTimeoutEvent: {
      auto* c = env.body_as_RequestTimeoutEvent();
      auto body = schema::CreateCleanupRequestCommand(b_, b_.CreateString(c->request_id()),
                                                      b_.CreateString("request timed out"));
      return Send(e, CommandBody::CleanupRequestCommand, body.Union());
    }
    case EventBody::RequestStatusChangedEvent: {
      auto* c = env.body_as_RequestStatusChangedEvent();
      auto body = schema::CreateCleanupRequestCommand(b_, b_.CreateString(c->request_id()),
                                                      b_.CreateString("request cancelled"));
      return Send(e, CommandBody::CleanupRequestCommand, body.Union());
    }
    default:
      return Status::Ok();
  }
}

void RequestWorkflowHandler::RegisterIn(Registry& r, std::shared_ptr<RequestWorkflowHandler> h) {
  for (EventBody t : {EventBody::RequestCreatedEvent, EventBody::RequestStatusChangedEvent,
                      EventBody::RequestCompletedEvent, EventBody::RequestFailedEvent, EventBody::RequestTimeoutEvent}) {
    r.Register(t, h);
  }
}

bool MachineWorkflowHandler::CanHandle(const Event& e) const {
  switch (e.envelope.body_type()) {
    case EventBody::MachineCreatedEvent:
    case EventBody::MachineTerminatedEvent:
      return true;
    case EventBody::MachineStatusChangedEvent: {
      auto* c = e.envelope.body_as_MachineStatusChangedEvent();
      return IsStatus(c->new_status(), "running") || IsStatus(c->new_status(), "terminated");
    }
    default:
      return false;
  }
}

Status MachineWorkflowHandler::Handle(const Event& e) {
  b_.Clear();
  const schema::Envelope& env = e.envelope;
  switch (env.body_type()) {
    case EventBody::MachineCreatedEvent: {
      auto body = schema::CreateStartMonitoringCommand(b_, b_.CreateString(env.body_as_MachineCreatedEvent()->machine_id()));
      return Send(e, CommandBody::StartMonitoringCommand, body.Union());
    }
    case EventBody::MachineStatusChangedEvent: {
      auto* c = env.body_as_MachineStatusChangedEvent();
      if (IsStatus(c->new_status(), "running")) {
        auto body = schema::CreateMarkMachineReadyCommand(b_, b_.CreateString(c->machine_id()));
        return Send(e, CommandBody::MarkMachineReadyCommand, body.Union());
      }
      auto body = schema::CreateCleanupMachineCommand(b_, b_.CreateString(c->machine_id()),
                                                      b_.CreateString(c->reason()));
      return Send(e, CommandBody::CleanupMachineCommand, body.Union());
    }
    case EventBody::MachineTerminatedEvent: {
      auto* c = env.body_as_MachineTerminatedEvent();
      auto body = schema::CreateCleanupMachineCommand(b_, b_.CreateString(c->machine_id()),
                                                      b_.CreateString(c->termination_reason()));
      return Send(e, CommandBody::CleanupMachineCommand, body.Union());
    }
    default:
      return Status::Ok();
  }
}

void MachineWorkflowHandler::RegisterIn(Registry& r, std::shared_ptr<MachineWorkflowHandler> h) {
  for (EventBody t : {EventBody::MachineCreatedEvent, EventBody::MachineStatusChangedEvent,
                      EventBody::MachineTerminatedEvent}) {
    r.Register(t, h);
  }
}

Status RegisterWorkflowHandlers(Registry& r, const std::string& store_dir, const CommandBusOptions& o) {
  auto requests = CommandSender::Open(store_dir, o);
  if (!requests.ok()) return requests.status();
  auto machines = CommandSender::Open(store_dir, o);
  if (!machines.ok()) return machines.status();
  RequestWorkflowHandler::RegisterIn(r, std::make_shared<RequestWorkflowHandler>(std::move(*requests)));
  MachineWorkflowHandler::RegisterIn(r, std::make_shared<MachineWorkflowHandler>(std::move(*machines)));
  return Status::Ok();
}

}  // namespace hfe::handlers
