// JsonCodec: builds the envelope JSON around the user's body and lets flatbuffers::Parser do the rest.
#include "tools/json_codec.h"

#include "handlers/envelope.h"
#include "schemas/events_schema_text.h"

namespace hfe::tools {

Result<std::unique_ptr<JsonCodec>> JsonCodec::Create() {
  auto c = std::make_unique<JsonCodec>();
  c->parser_.opts.strict_json = true;
  if (!c->parser_.Parse(schema::kEventsSchemaText)) {
    return Status(StatusCode::kInternal, "embedded event schema does not parse: " + c->parser_.error_);
  }
  auto printer = handlers::EventJson::Create();
  if (!printer.ok()) return printer.status();
  c->printer_ = std::move(*printer);
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

}  // namespace hfe::tools
