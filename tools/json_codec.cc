// JsonCodec: builds the envelope JSON around the user's body and lets flatbuffers::Parser do the rest.
#include "tools/json_codec.h"

#include "handlers/envelope.h"
#include "ipc/clock.h"
#include "schemas/events_schema_text.h"

namespace hfe::tools {

Result<std::unique_ptr<JsonCodec>> JsonCodec::Create() {
  auto c = std::make_unique<JsonCodec>();
  c->parser_.opts.strict_json = true;
  c->printer_.opts.strict_json = true;
  c->printer_.opts.output_default_scalars_in_json = true;
  c->printer_.opts.indent_step = -1;  // one line
  if (!c->parser_.Parse(schema::kEventsSchemaText) || !c->printer_.Parse(schema::kEventsSchemaText)) {
    return Status(StatusCode::kInternal, "embedded event schema does not parse: " + c->parser_.error_);
  }
  return c;
}

namespace {
std::string StreamType(const std::string& stream) {
  size_t dash = stream.find('-');
  return dash == std::string::npos ? stream : stream.substr(0, dash);
}
std::string OneLine(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}
}  // namespace

Result<std::vector<uint8_t>> JsonCodec::Encode(const std::string& stream, const std::string& type,
                                               const nlohmann::json& data, const store::EventId& id,
                                               int64_t occurred_at_ns) {
  if (handlers::EventTypeNumber(type) == 0) {
    return InvalidArgument("unknown event type '" + type + "' (expected a Host Factory event type such as " +
                           "RequestCreatedEvent; `hostfactory types` lists all " +
                           std::to_string(handlers::EventTypeCount()) + ")");
  }
  if (!data.is_object()) {
    return InvalidArgument("event data must be a JSON object, found " + std::string(data.type_name()));
  }
  nlohmann::json env = nlohmann::json::object();
  env["event_id"] = {{"hi", id.hi}, {"lo", id.lo}};
  env["stream_id"] = stream;
  env["stream_type"] = StreamType(stream);
  env["occurred_at_ns"] = occurred_at_ns;
  // The union's type must come before its value; nlohmann keeps keys sorted, so build the text by hand.
  std::string text = env.dump();
  text.pop_back();
  text += ",\"body_type\":\"" + type + "\",\"body\":" + data.dump() + "}";
  parser_.builder_.Clear();
  if (!parser_.ParseJson(text.c_str())) {
    std::string err = OneLine(parser_.error_);
    return InvalidArgument("data does not fit " + type + ": " + err + " (see schemas/events.fbs for its fields)");
  }
  std::vector<uint8_t> bytes(parser_.builder_.GetBufferPointer(),
                             parser_.builder_.GetBufferPointer() + parser_.builder_.GetSize());
  if (!handlers::VerifiedEnvelope(bytes)) return Status(StatusCode::kInternal, "encoded envelope fails verification");
  return bytes;
}

nlohmann::json JsonCodec::Decode(const store::EventView& v) {
  nlohmann::json j;
  j["position"] = v.position;
  j["stream"] = std::string(v.stream);
  j["version"] = v.version;
  const char* name = handlers::EventTypeName(v.type);
  j["type"] = name ? std::string(name) : "Unknown(" + std::to_string(v.type) + ")";
  j["event_id"] = v.id.ToString();
  j["occurred_at"] = clock::FormatIso8601(v.occurred_at_ns);
  const schema::Envelope* env = handlers::VerifiedEnvelope(v.payload);
  std::string text;
  if (env && name && flatbuffers::GenerateText(printer_, v.payload.data(), &text)) {
    auto parsed = nlohmann::json::parse(text, nullptr, false);
    if (!parsed.is_discarded() && parsed.contains("body")) {
      j["data"] = parsed["body"];
      if (parsed.contains("correlation_id")) {
        const auto& c = parsed["correlation_id"];
        j["correlation_id"] = store::EventId{c.value("hi", 0ull), c.value("lo", 0ull)}.ToString();
      }
      return j;
    }
  }
  j["data"] = nullptr;
  j["payload_bytes"] = v.payload.size();
  j["payload_note"] = env ? "event type unknown to this build: passed through undecoded"
                          : "payload is not a verified Envelope";
  return j;
}

}  // namespace hfe::tools
