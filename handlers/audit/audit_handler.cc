// AuditHandler: audit entries from events (the file's durability and rotation are JsonlFile's).
#include "handlers/audit/audit_handler.h"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "ipc/clock.h"

namespace hfe::handlers {

namespace {

// The value of the first `"key": "value"` string field of a JSON object text, or empty. The text is the
// FlatBuffers printer's (strict JSON), so a plain search finds the field; ids hold no quotes.
std::string_view StringField(std::string_view json, std::string_view key) {
  char pattern[72];
  if (key.size() + 3 > sizeof pattern) return {};
  pattern[0] = '"';
  std::memcpy(pattern + 1, key.data(), key.size());
  std::memcpy(pattern + 1 + key.size(), "\":", 2);
  const std::string_view p(pattern, key.size() + 3);
  size_t at = json.find(p);
  if (at == std::string_view::npos) return {};
  size_t begin = at + p.size();
  while (begin < json.size() && json[begin] == ' ') ++begin;
  if (begin >= json.size() || json[begin] != '"') return {};
  size_t end = ++begin;
  while (end < json.size() && json[end] != '"') end += json[end] == '\\' ? 2 : 1;
  return end < json.size() ? json.substr(begin, end - begin) : std::string_view{};
}

// The id of the resource an event is about: the id of its own family first (a MachineCreatedEvent also
// names its request), then the other id-like fields, then the stream.
std::string_view ResourceId(std::string_view details, std::string_view type_name, std::string_view stream) {
  size_t word = 1;
  while (word < type_name.size() && !std::isupper(static_cast<unsigned char>(type_name[word]))) ++word;
  char own[64];
  size_t n = std::min<size_t>(word, sizeof own - 4);
  for (size_t i = 0; i < n; ++i) own[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(type_name[i])));
  std::memcpy(own + n, "_id", 3);
  if (auto v = StringField(details, std::string_view(own, n + 3)); !v.empty()) return v;
  for (const char* key : {"request_id", "machine_id", "template_id", "resource_id", "entity_id", "provider_resource_id",
                          "service_name", "strategy_name", "component"}) {
    if (auto v = StringField(details, key); !v.empty()) return v;
  }
  return stream;
}

}  // namespace

Result<std::shared_ptr<AuditHandler>> AuditHandler::Open(const AuditOptions& o) {
  std::shared_ptr<AuditHandler> h(new AuditHandler());
  auto json = EventJson::Create();
  if (!json.ok()) return json.status();
  h->json_ = std::move(*json);
  AuditOptions opts = o;
  // Rotation happens between writes, so a buffer well below the rotation size keeps files near that size.
  if (opts.buffer_bytes == 0) {
    opts.buffer_bytes = opts.max_bytes ? std::min<uint64_t>(64 << 10, opts.max_bytes / 8) : 64 << 10;
  }
  HFE_RETURN_IF_ERROR(h->file_.Open(opts));
  std::lock_guard<std::mutex> lock(h->mu_);
  h->Published();
  return h;
}

void AuditHandler::Published() {
  last_position_.store(file_.last_position(), std::memory_order_release);
  written_position_.store(file_.written_position(), std::memory_order_release);
}

// The entry, keys in alphabetical order:
//   {"details":{...},"event_id":"...","event_type":"REQUEST_CREATED","occurred_at":"...","position":N,
//    "resource_id":"...","stream":"...","version":N}
Status AuditHandler::Handle(const Event& e) {
  std::lock_guard<std::mutex> lock(mu_);
  if (e.view.position <= file_.last_position() && file_.last_position() != 0) {
    // Already appended (a retry after a failed write): write what waits instead of appending it again.
    Status st = file_.Flush();
    Published();
    return st;
  }
  std::string& l = line_;
  l.clear();
  l.append("{\"details\":");
  const size_t details_at = l.size();
  if (!json_->BodyText(e.view.payload, &l)) l.append("{}");
  const std::string_view details(l.data() + details_at, l.size() - details_at);
  // resource_id points into `l`: copy it before `l` grows.
  char resource[256];
  std::string_view rid = ResourceId(details, e.type_name, e.view.stream);
  const size_t rid_len = std::min(rid.size(), sizeof resource);
  std::memcpy(resource, rid.data(), rid_len);
  l.append(",\"event_id\":\"").append(e.view.id.ToString()).append("\",\"event_type\":\"");
  l.append(AuditEventType(e.type_name)).append("\",\"occurred_at\":\"");
  l.append(clock::FormatIso8601(e.view.occurred_at_ns)).append("\",\"position\":");
  l.append(std::to_string(e.view.position)).append(",\"resource_id\":");
  AppendJsonString(std::string_view(resource, rid_len), &l);
  l.append(",\"stream\":");
  AppendJsonString(e.view.stream, &l);
  l.append(",\"version\":").append(std::to_string(e.view.version)).append("}");
  Status st = file_.AppendLine(l, e.view.position);
  Published();
  return st;
}

Status AuditHandler::Flush() {
  std::lock_guard<std::mutex> lock(mu_);
  Status st = file_.Flush();
  Published();
  return st;
}

uint64_t AuditHandler::entries() const {
  std::lock_guard<std::mutex> lock(mu_);
  return file_.entries();
}

}  // namespace hfe::handlers
