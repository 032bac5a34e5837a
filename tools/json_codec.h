// JSON <-> stored event, through FlatBuffers' own JSON parser and printer and the embedded schema.
#pragma once

#include <flatbuffers/idl.h>

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "handlers/event_json.h"
#include "ipc/status.h"
#include "store/types.h"

namespace hfe::tools {

class JsonCodec {
 public:
  static Result<std::unique_ptr<JsonCodec>> Create();

  // Encodes one event: `type` is a catalogue name, `data` the body as a JSON object. The returned bytes are an
  // Envelope verified by the FlatBuffers Verifier.
  Result<std::vector<uint8_t>> Encode(const std::string& stream, const std::string& type, const nlohmann::json& data,
                                      const store::EventId& id, int64_t occurred_at_ns);
  // One JSON object for a stored event: position, stream, version, type, event_id, occurred_at, data.
  nlohmann::json Decode(const store::EventView& v) { return printer_->Line(v); }

 private:
  flatbuffers::Parser parser_;                  // for encoding (holds the schema and builds buffers)
  std::unique_ptr<handlers::EventJson> printer_;  // for decoding
};

}  // namespace hfe::tools
