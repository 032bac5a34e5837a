// Machine aggregate: transitions and the events they raise.
#include "handlers/aggregates/machine.h"

#include "ipc/clock.h"

namespace hfe::handlers::aggregates {

namespace fb = flatbuffers;

const char* MachineStatusName(MachineStatus s) {
  switch (s) {
    case MachineStatus::kPending: return "pending";
    case MachineStatus::kRunning: return "running";
    case MachineStatus::kStopping: return "stopping";
    case MachineStatus::kTerminated: return "terminated";
    case MachineStatus::kFailed: return "failed";
  }
  return "?";
}

const char* MachineOutwardResult(MachineStatus s) {
  switch (s) {
    case MachineStatus::kPending: return "executing";
    case MachineStatus::kRunning:
    case MachineStatus::kStopping: return "succeed";
    default: return "fail";
  }
}

namespace {
MachineStatus ParseStatus(const std::string& s) {
  for (MachineStatus m : {MachineStatus::kPending, MachineStatus::kRunning, MachineStatus::kStopping,
                          MachineStatus::kTerminated, MachineStatus::kFailed}) {
    if (s == MachineStatusName(m)) return m;
  }
  return MachineStatus::kPending;
}
}  // namespace

bool Machine::Allowed(MachineStatus from, MachineStatus to) {
  switch (from) {
    case MachineStatus::kPending: return to == MachineStatus::kRunning || to == MachineStatus::kFailed;
    case MachineStatus::kRunning:
      return to == MachineStatus::kStopping || to == MachineStatus::kTerminated || to == MachineStatus::kFailed;
    case MachineStatus::kStopping: return to == MachineStatus::kTerminated;
    default: return false;
  }
}

Result<Machine> Machine::Create(const std::string& machine_id, const std::string& template_id,
                                const std::string& request_id, const std::string& instance_type,
                                const std::string& availability_zone) {
  if (machine_id.empty()) return InvalidArgument("machine id is empty; expected e.g. machine-<uuid>");
  if (request_id.empty()) return InvalidArgument("machine \"" + machine_id + "\": request id is empty");
  Machine m(machine_id);
  fb::FlatBufferBuilder b;
  auto body = schema::CreateMachineCreatedEventDirect(b, machine_id.c_str(), "", template_id.c_str(), request_id.c_str(),
                                                     instance_type.c_str(), availability_zone.c_str(), "");
  m.Raise(b, schema::EventBody::MachineCreatedEvent, body.Union());
  return m;
}

Result<Machine> Machine::Load(const store::EventStore& store, const std::string& machine_id) {
  Machine m(machine_id);
  HFE_RETURN_IF_ERROR(m.LoadFrom(store));
  return m;
}

Status Machine::Provision(const std::string& instance_id, const std::string& private_ip, const std::string& public_ip) {
  if (status_ != MachineStatus::kPending) return Refuse("provision", MachineStatusName(status_));
  if (instance_id.empty()) return InvalidArgument("machine \"" + id() + "\": provisioning needs an instance id");
  fb::FlatBufferBuilder b;
  auto body = schema::CreateMachineProvisionedEventDirect(b, id().c_str(), instance_id.c_str(), private_ip.c_str(),
                                                         public_ip.c_str(), clock::WallNanos());
  Raise(b, schema::EventBody::MachineProvisionedEvent, body.Union());
  return ChangeStatus(MachineStatus::kRunning, "provisioned");
}

Status Machine::ChangeStatus(MachineStatus to, const std::string& reason) {
  if (!Allowed(status_, to)) {
    return Refuse(std::string("change status to ") + MachineStatusName(to), MachineStatusName(status_));
  }
  fb::FlatBufferBuilder b;
  auto body = schema::CreateMachineStatusChangedEventDirect(b, id().c_str(), instance_id_.c_str(),
                                                           MachineStatusName(status_), MachineStatusName(to),
                                                           reason.c_str(), health_.c_str());
  Raise(b, schema::EventBody::MachineStatusChangedEvent, body.Union());
  return Status::Ok();
}

Status Machine::HealthCheck(const std::string& health_status, const KeyValues& details) {
  if (status_ != MachineStatus::kRunning) return Refuse("health-check", MachineStatusName(status_));
  fb::FlatBufferBuilder b;
  auto body = schema::CreateMachineHealthCheckEvent(b, b.CreateString(id()), b.CreateString(instance_id_),
                                                    b.CreateString(health_status), EncodeKeyValues(b, details),
                                                    clock::WallNanos());
  Raise(b, schema::EventBody::MachineHealthCheckEvent, body.Union());
  return Status::Ok();
}

Status Machine::Terminate(const std::string& reason) {
  if (status_ == MachineStatus::kTerminated) return Refuse("terminate", "terminated");
  fb::FlatBufferBuilder b;
  auto body = schema::CreateMachineTerminatedEventDirect(b, id().c_str(), instance_id_.c_str(), request_id_.c_str(),
                                                        reason.c_str(), clock::WallNanos());
  Raise(b, schema::EventBody::MachineTerminatedEvent, body.Union());
  return Status::Ok();
}

flatbuffers::Offset<schema::MachineState> Machine::ToState(fb::FlatBufferBuilder& b) const {
  return schema::CreateMachineStateDirect(b, id().c_str(), version().value_or(0), MachineStatusName(status_),
                                          request_id_.c_str(), template_id_.c_str(), instance_type_.c_str(),
                                          instance_id_.c_str(), private_ip_.c_str(), public_ip_.c_str(), health_.c_str());
}

Machine Machine::FromState(const schema::MachineState& s) {
  Machine m(Str(s.id()));
  m.status_ = ParseStatus(Str(s.status()));
  m.request_id_ = Str(s.request_id());
  m.template_id_ = Str(s.template_id());
  m.instance_type_ = Str(s.instance_type());
  m.instance_id_ = Str(s.instance_id());
  m.private_ip_ = Str(s.private_ip());
  m.public_ip_ = Str(s.public_ip());
  m.health_ = Str(s.health());
  m.RestoreVersion(s.version());
  return m;
}

void Machine::Apply(const schema::Envelope& e) {
  switch (e.body_type()) {
    case schema::EventBody::MachineCreatedEvent: {
      auto* c = e.body_as_MachineCreatedEvent();
      status_ = MachineStatus::kPending;
      request_id_ = Str(c->request_id());
      template_id_ = Str(c->template_id());
      instance_type_ = Str(c->instance_type());
      break;
    }
    case schema::EventBody::MachineProvisionedEvent: {
      auto* p = e.body_as_MachineProvisionedEvent();
      instance_id_ = Str(p->instance_id());
      private_ip_ = Str(p->private_ip());
      public_ip_ = Str(p->public_ip());
      break;
    }
    case schema::EventBody::MachineStatusChangedEvent:
      status_ = ParseStatus(Str(e.body_as_MachineStatusChangedEvent()->new_status()));
      break;
    case schema::EventBody::MachineHealthCheckEvent:
      health_ = Str(e.body_as_MachineHealthCheckEvent()->health_status());
      break;
    case schema::EventBody::MachineTerminatedEvent:
      status_ = MachineStatus::kTerminated;
      break;
    default:
      break;
  }
}

}  // namespace hfe::handlers::aggregates
