// Machine: a cloud machine provisioned for a request and its lifecycle:
//   Create (pending) -> Provision (addresses; running) -> HealthCheck* -> ChangeStatus / Terminate
// Allowed status changes: pending -> running | failed; running -> stopping | terminated | failed;
// stopping -> terminated. Outward result: pending -> "executing"; running -> "succeed"; terminated/failed -> "fail".
#pragma once

#include <string>

#include "handlers/aggregates/aggregate.h"
#include "schemas/snapshot_generated.h"

namespace hfe::handlers::aggregates {

enum class MachineStatus { kPending, kRunning, kStopping, kTerminated, kFailed };
const char* MachineStatusName(MachineStatus s);
const char* MachineOutwardResult(MachineStatus s);

class Machine : public AggregateRoot {
 public:
  static Result<Machine> Create(const std::string& machine_id, const std::string& template_id,
                                const std::string& request_id, const std::string& instance_type,
                                const std::string& availability_zone = "");
  static Result<Machine> Load(const store::EventStore& store, const std::string& machine_id);
  static Machine Blank(const std::string& machine_id) { return Machine(machine_id); }
  flatbuffers::Offset<schema::MachineState> ToState(flatbuffers::FlatBufferBuilder& b) const;
  static Machine FromState(const schema::MachineState& s);

  Status Provision(const std::string& instance_id, const std::string& private_ip, const std::string& public_ip);
  Status ChangeStatus(MachineStatus to, const std::string& reason);
  Status HealthCheck(const std::string& health_status, const KeyValues& details);
  Status Terminate(const std::string& reason);

  MachineStatus status() const { return status_; }
  const char* outward_result() const { return MachineOutwardResult(status_); }
  const std::string& request_id() const { return request_id_; }
  const std::string& template_id() const { return template_id_; }
  const std::string& instance_id() const { return instance_id_; }
  const std::string& private_ip() const { return private_ip_; }
  const std::string& public_ip() const { return public_ip_; }
  const std::string& health() const { return health_; }

 protected:
  void Apply(const schema::Envelope& e) override;

 private:
  explicit Machine(std::string id) : AggregateRoot(std::move(id), "machine") {}
  static bool Allowed(MachineStatus from, MachineStatus to);

  MachineStatus status_ = MachineStatus::kPending;
  std::string request_id_, template_id_, instance_type_, instance_id_, private_ip_, public_ip_, health_;
};

}  // namespace hfe::handlers::aggregates
