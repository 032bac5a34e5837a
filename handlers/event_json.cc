// EventJson: envelope -> JSON with flatbuffers::GenerateText.
#include "handlers/event_json.h"

#include <cctype>
#include <cstdio>

#include "handlers/envelope.h"
#include "ipc/clock.h"
#include "schemas/events_schema_text.h"

namespace hfe::handlers {

Result<std::unique_ptr<EventJson>> EventJson::Create() {
  auto j = std::make_unique<EventJson>();
  j->printer_.opts.strict_json = true;
  j->printer_.opts.output_default_scalars_in_json = true;
  j->printer_.opts.indent_step = -1;
  if (!j->printer_.Parse(schema::kEventsSchemaText)) {
    return Status(StatusCode::kInternal, "embedded event schema does not parse: " + j->printer_.error_);
  }
  return j;
}

nlohmann::json EventJson::Body(std::span<const uint8_t> payload) {
  const schema::Envelope* env = VerifiedEnvelope(payload);
  if (!env || !EventTypeName(static_cast<uint32_t>(env->body_type()))) return nullptr;
  std::string text;
  if (!flatbuffers::GenerateText(printer_, payload.data(), &text)) return nullptr;
  auto parsed = nlohmann::json::parse(text, nullptr, false);
  if (parsed.is_discarded() || !parsed.contains("body")) return nullptr;
  return parsed["body"];
}

bool EventJson::BodyText(std::span<const uint8_t> payload, std::string* out) {
  const schema::Envelope* env = VerifiedEnvelope(payload);
  const char* name = env ? EventTypeName(static_cast<uint32_t>(env->body_type())) : nullptr;
  if (!name || !env->body()) return false;
  table_name_.assign("hfe.schema.");
  table_name_.append(name);
  text_.clear();
  if (!flatbuffers::GenerateTextFromTable(printer_, env->body(), table_name_, &text_)) return false;
  out->append(text_);
  return true;
}

void AppendJsonString(std::string_view s, std::string* out) {
  out->push_back('"');
  for (char c : s) {
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned char>(c));
          out->append(buf);
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

nlohmann::json EventJson::Line(const store::EventView& v) {
  nlohmann::json j;
  j["position"] = v.position;
  j["stream"] = std::string(v.stream);
  j["version"] = v.version;
  const char* name = EventTypeName(v.type);
  j["type"] = name ? std::string(name) : "Unknown(" + std::to_string(v.type) + ")";
  j["event_id"] = v.id.ToString();
  j["occurred_at"] = clock::FormatIso8601(v.occurred_at_ns);
  if (v.redacted) {
    j["data"] = nullptr;
    j["redacted"] = true;
    return j;
  }
  nlohmann::json body = Body(v.payload);
  if (!body.is_null()) {
    j["data"] = std::move(body);
    const schema::Envelope* env = VerifiedEnvelope(v.payload);
    if (env && env->correlation_id()) {
      j["correlation_id"] = store::EventId{env->correlation_id()->hi(), env->correlation_id()->lo()}.ToString();
    }
    return j;
  }
  j["data"] = nullptr;
  j["payload_bytes"] = v.payload.size();
  j["payload_note"] = VerifiedEnvelope(v.payload) ? "event type unknown to this build: passed through undecoded"
                                                  : "payload is not a verified Envelope";
  return j;
}

std::string AuditEventType(std::string_view name) {
  if (name.size() > 5 && name.substr(name.size() - 5) == "Event") name.remove_suffix(5);
  std::string out;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (i > 0 && std::isupper(static_cast<unsigned char>(c)) &&
        (std::islower(static_cast<unsigned char>(name[i - 1])) ||
         (i + 1 < name.size() && std::islower(static_cast<unsigned char>(name[i + 1]))))) {
      out += '_';
    }
    out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

}  // namespace hfe::handlers
