// Request aggregate: transitions and the events they raise.
#include "handlers/aggregates/request.h"

#include "ipc/clock.h"

namespace hfe::handlers::aggregates {

namespace fb = flatbuffers;

const char* RequestStatusName(RequestStatus s) {
  switch (s) {
    case RequestStatus::kPending: return "pending";
    case RequestStatus::kInProgress: return "in_progress";
    case RequestStatus::kCompleted: return "completed";
    case RequestStatus::kPartial: return "partial";
    case RequestStatus::kFailed: return "failed";
    case RequestStatus::kCancelled: return "cancelled";
    case RequestStatus::kTimedOut: return "timeout";
  }
  return "?";
}

const char* RequestOutwardStatus(RequestStatus s) {
  switch (s) {
    case RequestStatus::kPending:
    case RequestStatus::kInProgress: return "running";
    case RequestStatus::kCompleted: return "complete";
    default: return "complete_with_error";
  }
}

namespace {
RequestStatus ParseStatus(const std::string& s) {
  for (RequestStatus r : {RequestStatus::kPending, RequestStatus::kInProgress, RequestStatus::kCompleted,
                          RequestStatus::kPartial, RequestStatus::kFailed, RequestStatus::kCancelled,
                          RequestStatus::kTimedOut}) {
    if (s == RequestStatusName(r)) return r;
  }
  return RequestStatus::kPending;
}
}  // namespace

Result<Request> Request::Create(const std::string& request_id, const std::string& template_id, int machine_count,
                                schema::RequestType type, int timeout_seconds, const KeyValues& tags) {
  if (request_id.empty()) return InvalidArgument("request id is empty; expected e.g. request-<uuid>");
  if (template_id.empty()) return InvalidArgument("request \"" + request_id + "\": template id is empty");
  if (machine_count < 1) {
    return InvalidArgument("request \"" + request_id + "\": machine count must be at least 1, found " +
                           std::to_string(machine_count));
  }
  Request r(request_id);
  fb::FlatBufferBuilder b;
  auto body = schema::CreateRequestCreatedEvent(b, b.CreateString(request_id), type, b.CreateString(template_id),
                                                machine_count, timeout_seconds, EncodeKeyValues(b, tags));
  r.Raise(b, schema::EventBody::RequestCreatedEvent, body.Union());
  return r;
}

Result<Request> Request::Load(const store::EventStore& store, const std::string& request_id) {
  Request r(request_id);
  HFE_RETURN_IF_ERROR(r.LoadFrom(store));
  return r;
}

Status Request::ChangeStatus(RequestStatus to, const std::string& reason) {
  fb::FlatBufferBuilder b;
  auto body = schema::CreateRequestStatusChangedEventDirect(b, id().c_str(), type_, RequestStatusName(status_),
                                                           RequestStatusName(to), reason.c_str());
  Raise(b, schema::EventBody::RequestStatusChangedEvent, body.Union());
  return Status::Ok();
}

Status Request::StartProvisioning() {
  if (status_ != RequestStatus::kPending) return Refuse("start provisioning", RequestStatusName(status_));
  return ChangeStatus(RequestStatus::kInProgress, "provisioning started");
}

Status Request::Complete(const std::vector<std::string>& machine_ids) {
  if (status_ != RequestStatus::kInProgress) return Refuse("complete", RequestStatusName(status_));
  int64_t now = clock::WallNanos();
  bool partial = static_cast<int>(machine_ids.size()) < machine_count_;
  fb::FlatBufferBuilder b;
  std::vector<fb::Offset<fb::String>> ids;
  for (const auto& m : machine_ids) ids.push_back(b.CreateString(m));
  auto body = schema::CreateRequestCompletedEvent(
      b, b.CreateString(id()), type_, b.CreateString(partial ? "partial" : "complete"), b.CreateVector(ids), now,
      static_cast<double>(now - created_at_ns_) / 1e9, b.CreateString(template_id_), machine_count_);
  Raise(b, schema::EventBody::RequestCompletedEvent, body.Union());
  return Status::Ok();
}

Status Request::Fail(const std::string& error_message, const std::string& error_code, const std::string& reason) {
  if (!Open()) return Refuse("fail", RequestStatusName(status_));
  fb::FlatBufferBuilder b;
  auto body = schema::CreateRequestFailedEventDirect(b, id().c_str(), type_, error_message.c_str(), error_code.c_str(),
                                                    reason.c_str());
  Raise(b, schema::EventBody::RequestFailedEvent, body.Union());
  return Status::Ok();
}

Status Request::TimeOut(const std::vector<std::string>& partial_results) {
  if (!Open()) return Refuse("time out", RequestStatusName(status_));
  fb::FlatBufferBuilder b;
  std::vector<fb::Offset<fb::String>> parts;
  for (const auto& p : partial_results) parts.push_back(b.CreateString(p));
  double waited = static_cast<double>(clock::WallNanos() - created_at_ns_) / 1e9;
  auto body = schema::CreateRequestTimeoutEvent(b, b.CreateString(id()), type_, waited, b.CreateVector(parts));
  Raise(b, schema::EventBody::RequestTimeoutEvent, body.Union());
  return Status::Ok();
}

Status Request::Cancel(const std::string& reason) {
  if (!Open()) return Refuse("cancel", RequestStatusName(status_));
  return ChangeStatus(RequestStatus::kCancelled, reason);
}

flatbuffers::Offset<schema::RequestState> Request::ToState(fb::FlatBufferBuilder& b) const {
  std::vector<fb::Offset<fb::String>> ids;
  for (const auto& m : machine_ids_) ids.push_back(b.CreateString(m));
  return schema::CreateRequestState(b, b.CreateString(id()), version().value_or(0), b.CreateString(RequestStatusName(status_)),
                                    b.CreateString(template_id_), machine_count_, type_, b.CreateVector(ids),
                                    b.CreateString(error_), EncodeKeyValues(b, tags_), created_at_ns_);
}

Request Request::FromState(const schema::RequestState& s) {
  Request r(Str(s.id()));
  r.status_ = ParseStatus(Str(s.status()));
  r.template_id_ = Str(s.template_id());
  r.machine_count_ = s.machine_count();
  r.type_ = s.request_type();
  if (s.machine_ids()) {
    for (const auto* m : *s.machine_ids()) r.machine_ids_.push_back(m->str());
  }
  r.error_ = Str(s.error());
  r.tags_ = DecodeKeyValues(s.tags());
  r.created_at_ns_ = s.created_at_ns();
  r.created_ = true;
  r.RestoreVersion(s.version());
  return r;
}

void Request::Apply(const schema::Envelope& e) {
  switch (e.body_type()) {
    case schema::EventBody::RequestCreatedEvent: {
      auto* c = e.body_as_RequestCreatedEvent();
      created_ = true;
      status_ = RequestStatus::kPending;
      template_id_ = Str(c->template_id());
      machine_count_ = c->machine_count();
      type_ = c->request_type();
      tags_ = DecodeKeyValues(c->tags());
      created_at_ns_ = e.occurred_at_ns();
      break;
    }
    case schema::EventBody::RequestStatusChangedEvent:
      status_ = ParseStatus(Str(e.body_as_RequestStatusChangedEvent()->new_status()));
      break;
    case schema::EventBody::RequestCompletedEvent: {
      auto* c = e.body_as_RequestCompletedEvent();
      status_ = Str(c->completion_status()) == "partial" ? RequestStatus::kPartial : RequestStatus::kCompleted;
      machine_ids_.clear();
      if (c->machine_ids()) {
        for (const auto* m : *c->machine_ids()) machine_ids_.push_back(m->str());
      }
      break;
    }
    case schema::EventBody::RequestFailedEvent:
      status_ = RequestStatus::kFailed;
      error_ = Str(e.body_as_RequestFailedEvent()->error_message());
      break;
    case schema::EventBody::RequestTimeoutEvent:
      status_ = RequestStatus::kTimedOut;
      break;
    default:
      break;  // events of other types (or newer ones) do not change a request
  }
}

}  // namespace hfe::handlers::aggregates
