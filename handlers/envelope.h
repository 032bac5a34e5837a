// Encoding domain events: wraps a FlatBuffers event body in the Envelope every stored event carries, and
// decodes (verifies) stored payloads. The builder is reused between events, so steady-state encoding does
// not allocate.
#pragma once

#include <flatbuffers/flatbuffers.h>

#include <cstdint>
#include <span>
#include <string_view>

#include "schemas/events_generated.h"
#include "store/types.h"

namespace hfe::handlers {

struct EnvelopeMeta {
  store::EventId event_id;
  std::string_view stream_id;
  std::string_view stream_type;
  int64_t occurred_at_ns = 0;
  store::EventId correlation_id;
  store::EventId causation_id;
};

// Finishes `b` (which already holds the body table at `body`) as an Envelope and returns the bytes; fills
// `out` ready to append (id, type, time, payload pointing into the builder).
std::span<const uint8_t> FinishEnvelope(flatbuffers::FlatBufferBuilder& b, const EnvelopeMeta& meta,
                                        schema::EventBody type, flatbuffers::Offset<void> body, store::EventData* out);

// The verified Envelope in a stored payload, or null when the bytes are not a valid Envelope.
const schema::Envelope* VerifiedEnvelope(std::span<const uint8_t> payload);

// "RequestCreatedEvent" for a known type number, nullptr otherwise.
const char* EventTypeName(uint32_t type);
// The type number of an event type name, 0 when unknown.
uint32_t EventTypeNumber(std::string_view name);
inline uint32_t EventTypeCount() { return static_cast<uint32_t>(schema::EventBody::MAX); }

}  // namespace hfe::handlers
