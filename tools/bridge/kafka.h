// A small RAII layer over librdkafka's C API for the Kafka bridge: configuration that reports bad properties as
// Status, owned handles that are destroyed in the right order, and the record headers the bridge writes.
//
//   auto conf = hfe::bridge::KafkaConf::Create({{"bootstrap.servers", "broker:9092"}});
//   HFE_RETURN_IF_ERROR(conf->Set("enable.idempotence", "true"));
//   auto rk = hfe::bridge::NewKafka(RD_KAFKA_PRODUCER, std::move(*conf));
//
// Nothing here throws; every librdkafka error becomes a Status whose message names the property or call.
// Thread safety: as librdkafka's (a handle may be used from several threads; a KafkaConf by one).
#pragma once

#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ipc/status.h"

namespace hfe::bridge {

// The record headers every exported event carries; values are text (kcat and any client print them as is).
inline constexpr const char* kHeaderEventId = "event-id";        // canonical UUID text
inline constexpr const char* kHeaderType = "event-type";         // "RequestCreatedEvent", or the number if unknown
inline constexpr const char* kHeaderStream = "stream";           // the hfevents stream name (also the record key)
inline constexpr const char* kHeaderVersion = "version";         // the event's version in its stream, decimal
inline constexpr const char* kHeaderPosition = "position";       // its position in the source log, decimal
inline constexpr const char* kHeaderOccurredAt = "occurred-at";  // nanoseconds since the Unix epoch, decimal

struct KafkaDeleter {
  void operator()(rd_kafka_t* rk) const;
  void operator()(rd_kafka_conf_t* c) const { rd_kafka_conf_destroy(c); }
  void operator()(rd_kafka_topic_partition_list_t* l) const { rd_kafka_topic_partition_list_destroy(l); }
  void operator()(rd_kafka_message_t* m) const { rd_kafka_message_destroy(m); }
};
using KafkaPtr = std::unique_ptr<rd_kafka_t, KafkaDeleter>;
using PartitionListPtr = std::unique_ptr<rd_kafka_topic_partition_list_t, KafkaDeleter>;
using MessagePtr = std::unique_ptr<rd_kafka_message_t, KafkaDeleter>;

// A configuration being built; handed over to NewKafka, which takes ownership.
class KafkaConf {
 public:
  static Result<KafkaConf> Create(const std::vector<std::pair<std::string, std::string>>& properties = {});
  // Sets one property; InvalidArgument naming it and librdkafka's reason when it is unknown or its value bad.
  Status Set(std::string_view key, std::string_view value);
  // "key=value" as given to -X; InvalidArgument when there is no '='.
  Status SetAssignment(std::string_view key_equals_value);
  rd_kafka_conf_t* get() { return conf_.get(); }
  rd_kafka_conf_t* release() { return conf_.release(); }

 private:
  explicit KafkaConf(rd_kafka_conf_t* c) : conf_(c) {}
  std::unique_ptr<rd_kafka_conf_t, KafkaDeleter> conf_;
};

// A producer or consumer made from `conf` (consumed even on failure).
Result<KafkaPtr> NewKafka(rd_kafka_type_t type, KafkaConf conf);

// Status for a librdkafka error code: "<what>: <librdkafka's text> (<error name>)".
Status KafkaStatus(std::string_view what, rd_kafka_resp_err_t err);

// The last header `name` of a message as text, or nullopt when absent.
std::optional<std::string_view> HeaderText(const rd_kafka_message_t* m, const char* name);

// Parses a decimal uint64/int64 header value; nullopt unless the whole text is a number.
std::optional<uint64_t> ParseU64(std::string_view text);
std::optional<int64_t> ParseI64(std::string_view text);

}  // namespace hfe::bridge
