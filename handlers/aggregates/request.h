// Request: a Host Factory request for machines (provision or return) and its lifecycle:
//   Create -> StartProvisioning -> Complete (all machines, or partial) | Fail | TimeOut | Cancel
// Outward status (what the scheduler sees): pending / in_progress -> "running"; completed -> "complete";
// partial / failed / cancelled / timed out -> "complete_with_error".
#pragma once

#include <string>
#include <vector>

#include "handlers/aggregates/aggregate.h"
#include "schemas/snapshot_generated.h"

namespace hfe::handlers::aggregates {

enum class RequestStatus { kPending, kInProgress, kCompleted, kPartial, kFailed, kCancelled, kTimedOut };
const char* RequestStatusName(RequestStatus s);         // "pending", "in_progress", ...
const char* RequestOutwardStatus(RequestStatus s);      // "running", "complete", "complete_with_error"

class Request : public AggregateRoot {
 public:
  static Result<Request> Create(const std::string& request_id, const std::string& template_id, int machine_count,
                                schema::RequestType type = schema::RequestType::Provision, int timeout_seconds = 0,
                                const KeyValues& tags = {});
  static Result<Request> Load(const store::EventStore& store, const std::string& request_id);
  // An aggregate with no events yet, to fold stored events into (ApplyStored).
  static Request Blank(const std::string& request_id) { return Request(request_id); }
  // Snapshot state: out and back in (the version comes along).
  flatbuffers::Offset<schema::RequestState> ToState(flatbuffers::FlatBufferBuilder& b) const;
  static Request FromState(const schema::RequestState& s);

  Status StartProvisioning();
  Status Complete(const std::vector<std::string>& machine_ids);
  Status Fail(const std::string& error_message, const std::string& error_code, const std::string& reason);
  Status TimeOut(const std::vector<std::string>& partial_results);
  Status Cancel(const std::string& reason);

  RequestStatus status() const { return status_; }
  const char* outward_status() const { return RequestOutwardStatus(status_); }
  const std::string& template_id() const { return template_id_; }
  int machine_count() const { return machine_count_; }
  schema::RequestType type() const { return type_; }
  const std::vector<std::string>& machine_ids() const { return machine_ids_; }
  const std::string& error() const { return error_; }
  const KeyValues& tags() const { return tags_; }
  int64_t created_at_ns() const { return created_at_ns_; }

 protected:
  void Apply(const schema::Envelope& e) override;

 private:
  explicit Request(std::string id) : AggregateRoot(std::move(id), "request") {}
  bool Open() const { return status_ == RequestStatus::kPending || status_ == RequestStatus::kInProgress; }
  Status ChangeStatus(RequestStatus to, const std::string& reason);

  RequestStatus status_ = RequestStatus::kPending;
  std::string template_id_;
  int machine_count_ = 0;
  schema::RequestType type_ = schema::RequestType::Provision;
  std::vector<std::string> machine_ids_;
  std::string error_;
  KeyValues tags_;
  int64_t created_at_ns_ = 0;
  bool created_ = false;
};

}  // namespace hfe::handlers::aggregates
