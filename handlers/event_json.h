// Events as JSON, through FlatBuffers' own printer and the embedded schema: the body of an envelope, and the
// line the CLI's read and print handler emit (position, stream, version, type, event_id, occurred_at, data).
#pragma once

#include <flatbuffers/idl.h>

#include <memory>
#include <span>

#include <nlohmann/json.hpp>

#include "ipc/status.h"
#include "store/types.h"

namespace hfe::handlers {

class EventJson {
 public:
  static Result<std::unique_ptr<EventJson>> Create();
  // The body of a verified envelope as a JSON object; null when the payload is not an envelope of a known type.
  nlohmann::json Body(std::span<const uint8_t> payload);
  // Appends the body of a verified envelope as JSON text (fields in schema order) to `out`; false when the
  // payload is not an envelope of a known type. Cheaper than Body(): no JSON object is built.
  bool BodyText(std::span<const uint8_t> payload, std::string* out);
  // One object for a stored event. Not thread-safe: one EventJson per thread.
  nlohmann::json Line(const store::EventView& v);

 private:
  flatbuffers::Parser printer_;
  std::string table_name_, text_;  // reused between events
};

// "RequestStatusChangedEvent" -> "REQUEST_STATUS_CHANGED" (the audit log's event types).
std::string AuditEventType(std::string_view type_name);

// Appends `s` to `out` as a JSON string literal (quotes, backslashes and control characters escaped).
void AppendJsonString(std::string_view s, std::string* out);

}  // namespace hfe::handlers
