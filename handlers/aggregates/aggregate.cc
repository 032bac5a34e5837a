// AggregateRoot: raising, saving and loading events.
#include "handlers/aggregates/aggregate.h"

#include <algorithm>

#include "handlers/envelope.h"
#include "ipc/clock.h"

namespace hfe::handlers::aggregates {

void AggregateRoot::Raise(flatbuffers::FlatBufferBuilder& b, schema::EventBody type, flatbuffers::Offset<void> body) {
  if (correlation_.IsNil()) correlation_ = store::EventId::Random();
  EnvelopeMeta meta;
  meta.event_id = store::EventId::Random();
  meta.stream_id = id_;
  meta.stream_type = stream_type_;
  meta.occurred_at_ns = clock::WallNanos();
  meta.correlation_id = correlation_;
  store::EventData d;
  auto bytes = FinishEnvelope(b, meta, type, body, &d);
  PendingEvent p{meta.event_id, type, meta.occurred_at_ns, std::vector<uint8_t>(bytes.begin(), bytes.end())};
  Apply(*schema::GetEnvelope(p.payload.data()));
  pending_.push_back(std::move(p));
}

Status AggregateRoot::Save(store::EventStore& store) {
  if (pending_.empty()) return Status::Ok();
  std::vector<store::EventData> events;
  events.reserve(pending_.size());
  for (const auto& p : pending_) {
    events.push_back({p.id, static_cast<uint32_t>(p.type), p.occurred_at_ns, p.payload});
  }
  auto expected = version_ ? store::ExpectedVersion::Exact(*version_) : store::ExpectedVersion::NoStream();
  auto r = store.Append(id_, expected, events);
  if (!r.ok()) return r.status();
  version_ = r->last_version;
  pending_.clear();
  return Status::Ok();
}

Status AggregateRoot::LoadFrom(const store::EventStore& store, uint64_t from_version) {
  Status bad = Status::Ok();
  Status st = store.ReadStream(id_, from_version, [&](const store::EventView& v) {
    const schema::Envelope* e = VerifiedEnvelope(v.payload);
    if (!e) {
      bad = DataLoss("stream \"" + id_ + "\" version " + std::to_string(v.version) +
                     ": payload is not a valid event envelope (run `hostfactory verify`)");
      return false;
    }
    Apply(*e);
    version_ = v.version;
    return true;
  });
  HFE_RETURN_IF_ERROR(st);
  HFE_RETURN_IF_ERROR(bad);
  if (!version_) return NotFound("no " + stream_type_ + " \"" + id_ + "\" (its stream has no events)");
  return Status::Ok();
}

Status AggregateRoot::CatchUp(const store::EventStore& store) {
  const uint64_t from = version_ ? *version_ + 1 : 0;
  Status st = LoadFrom(store, from);
  if (st.code() == StatusCode::kNotFound && version_) return Status::Ok();  // nothing after the snapshot
  return st;
}

Status AggregateRoot::Refuse(const std::string& action, const std::string& state) const {
  return FailedPrecondition(stream_type_ + " \"" + id_ + "\": cannot " + action + " while " + state +
                            " (reload it: another process may have moved it on)");
}

flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<schema::KeyValue>>> EncodeKeyValues(
    flatbuffers::FlatBufferBuilder& b, const KeyValues& kv) {
  std::vector<flatbuffers::Offset<schema::KeyValue>> v;
  for (const auto& [k, val] : kv) v.push_back(schema::CreateKeyValueDirect(b, k.c_str(), val.c_str()));
  return b.CreateVectorOfSortedTables(&v);
}

KeyValues DecodeKeyValues(const flatbuffers::Vector<flatbuffers::Offset<schema::KeyValue>>* v) {
  KeyValues out;
  if (!v) return out;
  for (const auto* kv : *v) out.emplace_back(Str(kv->key()), Str(kv->value()));
  return out;
}

}  // namespace hfe::handlers::aggregates
