// Envelope encoding and verification.
#include "handlers/envelope.h"

#include "ipc/clock.h"

namespace hfe::handlers {

std::span<const uint8_t> FinishEnvelope(flatbuffers::FlatBufferBuilder& b, const EnvelopeMeta& meta,
                                        schema::EventBody type, flatbuffers::Offset<void> body, store::EventData* out) {
  auto stream = b.CreateString(meta.stream_id.data(), meta.stream_id.size());
  auto stream_type = b.CreateString(meta.stream_type.data(), meta.stream_type.size());
  int64_t at = meta.occurred_at_ns ? meta.occurred_at_ns : clock::WallNanos();
  schema::Uuid id(meta.event_id.hi, meta.event_id.lo);
  schema::Uuid corr(meta.correlation_id.hi, meta.correlation_id.lo);
  schema::Uuid cause(meta.causation_id.hi, meta.causation_id.lo);
  schema::EnvelopeBuilder eb(b);
  eb.add_event_id(&id);
  eb.add_stream_id(stream);
  eb.add_stream_type(stream_type);
  eb.add_occurred_at_ns(at);
  if (!meta.correlation_id.IsNil()) eb.add_correlation_id(&corr);
  if (!meta.causation_id.IsNil()) eb.add_causation_id(&cause);
  eb.add_body_type(type);
  eb.add_body(body);
  schema::FinishEnvelopeBuffer(b, eb.Finish());
  std::span<const uint8_t> bytes(b.GetBufferPointer(), b.GetSize());
  if (out) {
    out->id = meta.event_id;
    out->type = static_cast<uint32_t>(type);
    out->occurred_at_ns = at;
    out->payload = bytes;
  }
  return bytes;
}

const schema::Envelope* VerifiedEnvelope(std::span<const uint8_t> payload) {
  if (payload.size() < 8 || payload.size() > (1u << 30)) return nullptr;
  flatbuffers::Verifier v(payload.data(), payload.size());
  if (!schema::VerifyEnvelopeBuffer(v)) return nullptr;
  return schema::GetEnvelope(payload.data());
}

const char* EventTypeName(uint32_t type) {
  if (type == 0 || type > EventTypeCount()) return nullptr;
  return schema::EnumNamesEventBody()[type];
}

uint32_t EventTypeNumber(std::string_view name) {
  for (uint32_t t = 1; t <= EventTypeCount(); ++t) {
    if (name == schema::EnumNamesEventBody()[t]) return t;
  }
  return 0;
}

}  // namespace hfe::handlers
