// AuditHandler: audit entries from events (the file's durability and rotation are JsonlFile's).
#include "handlers/audit/audit_handler.h"

#include <cctype>

#include "ipc/clock.h"

namespace hfe::handlers {

namespace {

// The id of the resource an event is about: the id of its own family first (a MachineCreatedEvent also
// names its request), then the other id-like fields, then the stream.
std::string ResourceId(const nlohmann::json& details, std::string_view type_name, std::string_view stream) {
  size_t word = 1;
  while (word < type_name.size() && !std::isupper(static_cast<unsigned char>(type_name[word]))) ++word;
  std::string own(type_name.substr(0, word));
  for (char& c : own) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  own += "_id";
  if (details.is_object() && details.contains(own) && details[own].is_string() && !details[own].get<std::string>().empty()) {
    return details[own].get<std::string>();
  }
  for (const char* key : {"request_id", "machine_id", "template_id", "resource_id", "entity_id", "provider_resource_id",
                          "service_name", "strategy_name", "component"}) {
    if (details.is_object() && details.contains(key) && details[key].is_string() && !details[key].get<std::string>().empty()) {
      return details[key].get<std::string>();
    }
  }
  return std::string(stream);
}

}  // namespace

Result<std::shared_ptr<AuditHandler>> AuditHandler::Open(const AuditOptions& o) {
  std::shared_ptr<AuditHandler> h(new AuditHandler());
  auto json = EventJson::Create();
  if (!json.ok()) return json.status();
  h->json_ = std::move(*json);
  HFE_RETURN_IF_ERROR(h->file_.Open(o));
  h->last_position_.store(h->file_.last_position(), std::memory_order_release);
  return h;
}

Status AuditHandler::Handle(const Event& e) {
  nlohmann::json details = json_->Body(e.view.payload);
  nlohmann::json entry;
  entry["event_type"] = AuditEventType(e.type_name);
  entry["resource_id"] = ResourceId(details, e.type_name, e.view.stream);
  entry["details"] = details.is_null() ? nlohmann::json::object() : details;
  entry["event_id"] = e.view.id.ToString();
  entry["position"] = e.view.position;
  entry["stream"] = std::string(e.view.stream);
  entry["version"] = e.view.version;
  entry["occurred_at"] = clock::FormatIso8601(e.view.occurred_at_ns);
  HFE_RETURN_IF_ERROR(file_.Append(entry));
  last_position_.store(e.view.position, std::memory_order_release);
  return Status::Ok();
}

}  // namespace hfe::handlers
