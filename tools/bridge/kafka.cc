// The RAII layer over librdkafka: configuration, handles, errors, headers.
#include "tools/bridge/kafka.h"

#include <charconv>

namespace hfe::bridge {

void KafkaDeleter::operator()(rd_kafka_t* rk) const {
  // A consumer leaves its group cleanly first (its assignment is given back at once, not after the session
  // timeout); a producer's undelivered messages are simply dropped: the bridge's cursor never passed them.
  if (rd_kafka_type(rk) == RD_KAFKA_CONSUMER) (void)rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
}

Result<KafkaConf> KafkaConf::Create(const std::vector<std::pair<std::string, std::string>>& properties) {
  KafkaConf c(rd_kafka_conf_new());
  for (const auto& [k, v] : properties) HFE_RETURN_IF_ERROR(c.Set(k, v));
  return c;
}

Status KafkaConf::Set(std::string_view key, std::string_view value) {
  char err[512] = {0};
  const std::string k(key), v(value);
  if (rd_kafka_conf_set(conf_.get(), k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
    return InvalidArgument("kafka property " + k + "=" + v + ": " + err +
                           " (see librdkafka's CONFIGURATION.md for the properties and their values)");
  }
  return Status::Ok();
}

Status KafkaConf::SetAssignment(std::string_view kv) {
  const size_t eq = kv.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    return InvalidArgument("-X: expected key=value (e.g. -X security.protocol=SASL_SSL); found '" + std::string(kv) +
                           "'");
  }
  return Set(kv.substr(0, eq), kv.substr(eq + 1));
}

Result<KafkaPtr> NewKafka(rd_kafka_type_t type, KafkaConf conf) {
  char err[512] = {0};
  rd_kafka_conf_t* c = conf.release();
  rd_kafka_t* rk = rd_kafka_new(type, c, err, sizeof err);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(c);  // rd_kafka_new takes the configuration only when it succeeds
    return InvalidArgument(std::string("cannot create the kafka ") +
                           (type == RD_KAFKA_PRODUCER ? "producer" : "consumer") + ": " + err +
                           " (check the -X properties)");
  }
  return KafkaPtr(rk);
}

Status KafkaStatus(std::string_view what, rd_kafka_resp_err_t err) {
  return Status(StatusCode::kUnavailable, std::string(what) + ": " + rd_kafka_err2str(err) + " (" +
                                              rd_kafka_err2name(err) + ")");
}

std::optional<std::string_view> HeaderText(const rd_kafka_message_t* m, const char* name) {
  rd_kafka_headers_t* hdrs = nullptr;
  // The headers stay owned by the message.
  if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR || hdrs == nullptr) return std::nullopt;
  const void* v = nullptr;
  size_t n = 0;
  if (rd_kafka_header_get_last(hdrs, name, &v, &n) != RD_KAFKA_RESP_ERR_NO_ERROR) return std::nullopt;
  return std::string_view(v ? static_cast<const char*>(v) : "", n);
}

std::optional<uint64_t> ParseU64(std::string_view text) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

std::optional<int64_t> ParseI64(std::string_view text) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

}  // namespace hfe::bridge
