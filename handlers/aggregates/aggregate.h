// AggregateRoot: the base of the Host Factory's domain aggregates (Request, Machine, Template).
//
// An aggregate holds its state, its version (the version of the newest event applied; none for a new one)
// and the domain events its transitions raised but that are not saved yet. Save() appends them to the
// aggregate's stream with the loaded version as the expected version, so two writers that loaded the same
// version cannot both save (WrongExpectedVersion for the second: reload and retry). Load() rebuilds the state
// by applying the stream's events in order; every payload passes the FlatBuffers Verifier first.
#pragma once

#include <flatbuffers/flatbuffers.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ipc/status.h"
#include "schemas/events_generated.h"
#include "store/event_store.h"

namespace hfe::handlers::aggregates {

struct PendingEvent {
  store::EventId id;
  schema::EventBody type;
  int64_t occurred_at_ns;
  std::vector<uint8_t> payload;  // the encoded Envelope
};

class AggregateRoot {
 public:
  virtual ~AggregateRoot() = default;

  const std::string& id() const { return id_; }
  // Version of the newest event applied; nullopt while the aggregate has no saved events.
  std::optional<uint64_t> version() const { return version_; }
  const std::vector<PendingEvent>& pending() const { return pending_; }
  // Events raised from now on carry this correlation id (e.g. the one of the command that caused them).
  void CorrelateWith(const store::EventId& id) { correlation_ = id; }
  // Applies one stored event of the aggregate's stream, `version` being its stream version (folding the log
  // event by event, as the compactor and replay do).
  void ApplyStored(const schema::Envelope& e, uint64_t version) {
    Apply(e);
    version_ = version;
  }

  // Applies the events of the stream after the aggregate's version (all of them for one with none), e.g.
  // after a state restored from a snapshot.
  Status CatchUp(const store::EventStore& store);

  // Appends the pending events atomically with the loaded version as expectation; clears them on success.
  Status Save(store::EventStore& store);

 protected:
  explicit AggregateRoot(std::string id, std::string stream_type) : id_(std::move(id)), stream_type_(std::move(stream_type)) {}

  // Applies one stored (or just raised) event to the state. Unknown types are ignored.
  virtual void Apply(const schema::Envelope& e) = 0;

  // Finishes `b` (holding a body of `type`) as an Envelope, applies it to the state and queues it.
  void Raise(flatbuffers::FlatBufferBuilder& b, schema::EventBody type, flatbuffers::Offset<void> body);

  // Rebuilds from the stream (after `from_version`, for an aggregate restored from a snapshot); NotFound when
  // the stream has no events.
  Status LoadFrom(const store::EventStore& store, uint64_t from_version = 0);
  // Sets the version of a state restored from a snapshot.
  void RestoreVersion(uint64_t v) { version_ = v; }
  // A transition that is not allowed: FailedPrecondition naming what was asked and the current state.
  Status Refuse(const std::string& action, const std::string& state) const;

  store::EventId correlation_;  // events raised by one aggregate instance share a correlation id

 private:
  std::string id_;
  std::string stream_type_;
  std::optional<uint64_t> version_;
  std::vector<PendingEvent> pending_;
};

// ["k=v", ...] <-> KeyValue vectors.
using KeyValues = std::vector<std::pair<std::string, std::string>>;
flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<schema::KeyValue>>> EncodeKeyValues(
    flatbuffers::FlatBufferBuilder& b, const KeyValues& kv);
KeyValues DecodeKeyValues(const flatbuffers::Vector<flatbuffers::Offset<schema::KeyValue>>* v);
inline std::string Str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }

}  // namespace hfe::handlers::aggregates
