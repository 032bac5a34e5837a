// bridge export: a durable subscription's events to a Kafka topic through the idempotent producer.
//
// Invariants:
//  - the window holds every produced, not yet passed event in log order; the subscription's cursor is
//    acknowledged only through the window's contiguous prefix of broker-acknowledged events, so a crash at
//    any instruction redelivers (never loses) what the brokers had not acknowledged;
//  - at most max_in_flight events are in the window, so a dead broker costs bounded memory and only grows the
//    subscription's lag; local producers never wait for a subscriber;
//  - after a failed delivery (the producer's own retries exhausted), nothing more is produced until every
//    record in flight has its report; then the bridge goes back to the cursor and produces again from there.
// Record values are copied into the producer's queue: a view's body is guaranteed whole only while its read
// lasts (a redaction may zero it afterwards), and records may wait in the queue for as long as a broker is away.
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <deque>
#include <memory>

#include <unistd.h>

#include "handlers/envelope.h"
#include "ipc/clock.h"
#include "store/subscription.h"
#include "tools/bridge/bridge.h"
#include "tools/bridge/kafka.h"

namespace hfe::bridge {
namespace {

enum class SlotState : uint8_t { kInFlight, kAcked, kFailed };

struct Slot {
  uint64_t position;
  int64_t occurred_at_ns;
  SlotState state;
};

// One line on stderr per distinct problem, repeated at most every 10 s while it lasts.
class ErrorLine {
 public:
  explicit ErrorLine(const char* who) : who_(who) {}
  void Report(const std::string& text) {
    const int64_t now = clock::MonotonicNanos();
    last_ = text;
    last_at_ns_ = clock::WallNanos();
    if (text == printed_ && now - printed_at_ < 10'000'000'000) return;
    printed_ = text;
    printed_at_ = now;
    std::fprintf(stderr, "hostfactory bridge %s: %s\n", who_, text.c_str());
  }
  const std::string& last() const { return last_; }
  int64_t last_at_ns() const { return last_at_ns_; }

 private:
  const char* who_;
  std::string printed_, last_;
  int64_t printed_at_ = 0, last_at_ns_ = 0;
};

struct ExportState {
  ExportState(const ExportOptions& opts, store::EventStore& st) : o(opts), store(st) {}
  const ExportOptions& o;
  store::EventStore& store;
  std::unique_ptr<store::Subscription> sub;
  KafkaPtr rk;
  std::deque<Slot> window;
  uint64_t base_seq = 0;  // sequence number of window.front()
  uint64_t next_seq = 0;
  bool failed = false;    // a delivery failed: produce nothing until the window settles, then rewind
  uint64_t in_flight = 0;
  uint64_t broker_errors = 0;
  ExportReport report;
  ErrorLine errors{"export"};
  bool debug = false;
  int64_t started_ns = clock::WallNanos();
};

void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto* s = static_cast<ExportState*>(opaque);
  const uint64_t seq = reinterpret_cast<uintptr_t>(m->_private);
  if (seq < s->base_seq || seq - s->base_seq >= s->window.size()) return;  // a record of a window given up
  Slot& slot = s->window[seq - s->base_seq];
  --s->in_flight;
  if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    slot.state = SlotState::kAcked;
    return;
  }
  slot.state = SlotState::kFailed;
  ++s->report.delivery_errors;
  if (!s->failed) {
    s->errors.Report("delivery of the event at position " + std::to_string(slot.position) + " to topic '" +
                     s->o.topic + "' failed: " + rd_kafka_err2str(m->err) + " (" + rd_kafka_err2name(m->err) +
                     "); the cursor stays before it and the bridge produces again from there");
  }
  s->failed = true;
}

void OnError(rd_kafka_t*, int err, const char* reason, void* opaque) {
  auto* s = static_cast<ExportState*>(opaque);
  ++s->broker_errors;
  s->errors.Report(std::string("kafka: ") + reason + " (" + rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)) +
                   "); the bridge keeps retrying and lags meanwhile; local appends are not affected");
}

void OnLog(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
  auto* s = static_cast<ExportState*>(rd_kafka_opaque(rk));
  // Errors arrive through OnError; librdkafka's own log is shown when asked for (-X debug=...) or critical.
  if (level <= 2 || (s && s->debug)) std::fprintf(stderr, "hostfactory bridge export: librdkafka %s: %s\n", fac, buf);
}

Result<KafkaConf> ProducerConf(const ExportOptions& o) {
  auto conf = KafkaConf::Create({{"bootstrap.servers", o.brokers},
                                 {"enable.idempotence", "true"},
                                 {"acks", "all"},
                                 {"linger.ms", std::to_string(o.linger_ms)},
                                 {"batch.num.messages", std::to_string(std::max<size_t>(o.batch_size, 1))},
                                 {"queue.buffering.max.messages", std::to_string(o.max_in_flight + 1000)},
                                 // The Java client's partitioner: a stream lands on the same partition
                                 // whichever client produced it.
                                 {"partitioner", "murmur2_random"}});
  if (!conf.ok()) return conf.status();
  for (const auto& p : o.properties) HFE_RETURN_IF_ERROR(conf->SetAssignment(p));
  char v[16] = {0};
  size_t n = sizeof v;
  if (rd_kafka_conf_get(conf->get(), "enable.idempotence", v, &n) == RD_KAFKA_CONF_OK && std::string(v) != "true") {
    return InvalidArgument("-X enable.idempotence=" + std::string(v) +
                           ": the export needs the idempotent producer (it keeps per-stream order across retries); "
                           "remove that property");
  }
  return conf;
}

Status NewProducer(ExportState& s) {
  auto conf = ProducerConf(s.o);
  if (!conf.ok()) return conf.status();
  size_t n = 0;  // the length of the debug property's value, with its NUL: more than 1 when it is set
  s.debug = rd_kafka_conf_get(conf->get(), "debug", nullptr, &n) == RD_KAFKA_CONF_OK && n > 1;
  rd_kafka_conf_set_opaque(conf->get(), &s);
  rd_kafka_conf_set_dr_msg_cb(conf->get(), OnDelivery);
  rd_kafka_conf_set_error_cb(conf->get(), OnError);
  rd_kafka_conf_set_log_cb(conf->get(), OnLog);
  auto rk = NewKafka(RD_KAFKA_PRODUCER, std::move(*conf));
  if (!rk.ok()) return rk.status();
  s.rk = std::move(*rk);
  return Status::Ok();
}

// Produces `e` unless the window is full or the producer's queue is; false leaves it for the next poll.
bool Produce(ExportState& s, const store::EventView& e) {
  if (s.window.size() >= s.o.max_in_flight || s.failed) return false;
  const char* type_name = handlers::EventTypeName(e.type);
  const std::string type = type_name ? type_name : std::to_string(e.type);
  const std::string id = e.id.ToString();
  char version[24], position[24], occurred[24];
  const int vn = std::snprintf(version, sizeof version, "%" PRIu64, e.version);
  const int pn = std::snprintf(position, sizeof position, "%" PRIu64, e.position);
  const int on = std::snprintf(occurred, sizeof occurred, "%" PRId64, e.occurred_at_ns);
  const uint64_t seq = s.next_seq;
  rd_kafka_resp_err_t err = rd_kafka_producev(
      s.rk.get(), RD_KAFKA_V_TOPIC(s.o.topic.c_str()),
      RD_KAFKA_V_KEY(e.stream.data(), e.stream.size()),
      // Copied (RD_KAFKA_MSG_F_COPY): the record outlives the read that produced the view.
      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
      RD_KAFKA_V_VALUE(const_cast<uint8_t*>(e.payload.data()), e.payload.size()),
      RD_KAFKA_V_TIMESTAMP(e.occurred_at_ns / 1'000'000),
      RD_KAFKA_V_HEADER(kHeaderEventId, id.data(), static_cast<ssize_t>(id.size())),
      RD_KAFKA_V_HEADER(kHeaderType, type.data(), static_cast<ssize_t>(type.size())),
      RD_KAFKA_V_HEADER(kHeaderStream, e.stream.data(), static_cast<ssize_t>(e.stream.size())),
      RD_KAFKA_V_HEADER(kHeaderVersion, version, vn), RD_KAFKA_V_HEADER(kHeaderPosition, position, pn),
      RD_KAFKA_V_HEADER(kHeaderOccurredAt, occurred, on),
      RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(static_cast<uintptr_t>(seq))), RD_KAFKA_V_END);
  if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) return false;
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++s.report.delivery_errors;
    s.errors.Report("cannot produce the event at position " + std::to_string(e.position) + " to topic '" +
                    s.o.topic + "': " + rd_kafka_err2str(err) + " (" + rd_kafka_err2name(err) +
                    "); retrying from the cursor");
    s.failed = true;
    return false;
  }
  s.window.push_back({e.position, e.occurred_at_ns, SlotState::kInFlight});
  ++s.next_seq;
  ++s.in_flight;
  ++s.report.produced;
  return true;
}

// Passes the window's acknowledged prefix and moves the cursor through it. True when it moved.
bool Advance(ExportState& s) {
  uint64_t last = 0;
  bool moved = false;
  while (!s.window.empty() && s.window.front().state == SlotState::kAcked) {
    const Slot& f = s.window.front();
    last = f.position;
    if (s.o.on_acked) s.o.on_acked(f.position, f.occurred_at_ns);
    s.window.pop_front();
    ++s.base_seq;
    ++s.report.acked;
    moved = true;
  }
  if (moved) s.sub->Ack(last);
  return moved;
}

Status OpenSubscription(ExportState& s) {
  s.sub.reset();  // detach first: one member per subscription
  store::SubscriptionOptions so;
  so.types = s.o.types;
  so.stream_prefix = s.o.stream_prefix;
  so.start = store::SubscriptionOptions::Start::kBeginning;
  so.wait = store::WaitStrategy::kPark;
  auto sub = store::Subscription::Open(s.store, s.o.subscription, so);
  if (!sub.ok()) return sub.status();
  s.sub = std::move(*sub);
  return Status::Ok();
}

Status Stats(ExportState& s, bool final) {
  if (s.o.stats_file.empty()) return Status::Ok();
  nlohmann::json j{{"kind", "export"},
                   {"name", s.o.subscription},
                   {"topic", s.o.topic},
                   {"brokers", s.o.brokers},
                   {"pid", ::getpid()},
                   {"final", final},
                   {"started_at", clock::FormatIso8601(s.started_ns)},
                   {"updated_at", clock::FormatIso8601(clock::WallNanos())},
                   {"produced_total", s.report.produced},
                   {"acked_total", s.report.acked},
                   {"delivery_errors_total", s.report.delivery_errors},
                   {"broker_errors_total", s.broker_errors},
                   {"rewinds_total", s.report.rewinds},
                   {"in_flight", s.window.size()},
                   {"cursor", s.sub ? s.sub->cursor() : 0},
                   {"lag_bytes", s.sub ? s.sub->lag_bytes() : 0},
                   {"last_error", s.errors.last()},
                   {"last_error_at", s.errors.last_at_ns() ? clock::FormatIso8601(s.errors.last_at_ns()) : ""}};
  return WriteStats(s.o.stats_file, j);
}

// After a failed delivery: wait for every record's report, keep what was acknowledged, then go back to the
// cursor. A producer in a fatal state (idempotence broken) is replaced.
Status Rewind(ExportState& s) {
  while (s.in_flight > 0) {
    rd_kafka_poll(s.rk.get(), 100);
    Advance(s);
    if (s.o.stop && *s.o.stop) return Status::Ok();
  }
  Advance(s);
  char reason[256] = {0};
  if (rd_kafka_fatal_error(s.rk.get(), reason, sizeof reason) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    s.errors.Report(std::string("the producer failed fatally (") + reason + "); starting a new one");
    s.rk.reset();
    HFE_RETURN_IF_ERROR(NewProducer(s));
  }
  s.base_seq = s.next_seq;
  s.window.clear();
  s.in_flight = 0;
  HFE_RETURN_IF_ERROR(OpenSubscription(s));
  ++s.report.rewinds;
  // Back off before producing again; keep serving the producer meanwhile.
  const int64_t until = clock::MonotonicNanos() + s.o.retry_backoff_ms * 1'000'000;
  while (clock::MonotonicNanos() < until && !(s.o.stop && *s.o.stop)) rd_kafka_poll(s.rk.get(), 50);
  s.failed = false;
  return Status::Ok();
}

}  // namespace

Status CheckExportOptions(const ExportOptions& o) {
  if (o.brokers.empty()) return InvalidArgument("--brokers: expected HOST:PORT[,...]; found nothing");
  if (o.topic.empty()) return InvalidArgument("--topic: expected a topic name; found nothing");
  if (o.batch_size == 0 || o.max_in_flight == 0) {
    return InvalidArgument("--batch-size and --max-in-flight must be at least 1");
  }
  HFE_RETURN_IF_ERROR(store::EventStore::CheckName(o.subscription, "--subscription", 200));
  if (!o.stream_prefix.empty()) HFE_RETURN_IF_ERROR(store::EventStore::CheckName(o.stream_prefix, "--stream-prefix", 1024));
  auto conf = ProducerConf(o);
  return conf.ok() ? Status::Ok() : conf.status();
}

Result<ExportReport> RunExport(store::EventStore& store, const ExportOptions& o) {
  HFE_RETURN_IF_ERROR(CheckExportOptions(o));
  auto s = std::make_unique<ExportState>(o, store);
  HFE_RETURN_IF_ERROR(NewProducer(*s));
  HFE_RETURN_IF_ERROR(OpenSubscription(*s));
  const auto visit = [st = s.get()](const store::EventView& e) { return Produce(*st, e); };
  int64_t idle_since = clock::MonotonicNanos(), stats_at = 0;
  Status result;
  while (!(o.stop && *o.stop)) {
    const int64_t now = clock::MonotonicNanos();
    if (now - stats_at > o.stats_interval_ms * 1'000'000) {
      stats_at = now;
      if (Status w = Stats(*s, false); !w.ok()) s->errors.Report("stats: " + w.message());
    }
    if (s->failed) {
      if (result = Rewind(*s); !result.ok()) break;
      continue;
    }
    size_t polled = 0;
    const size_t room = o.max_in_flight - std::min(o.max_in_flight, s->window.size());
    if (room > 0) {
      auto n = s->sub->Poll(visit, std::min(room, o.batch_size));
      if (!n.ok()) {
        result = n.status();
        break;
      }
      polled = *n;
    }
    rd_kafka_poll(s->rk.get(), 0);  // delivery reports and errors
    Advance(*s);
    if (polled > 0) {
      idle_since = now;
      continue;
    }
    if (!s->window.empty()) {
      // Waiting for acknowledgements (or for room in the window): the producer's reports wake us.
      rd_kafka_poll(s->rk.get(), room > 0 ? 1 : 10);
      Advance(*s);
      idle_since = now;
      continue;
    }
    // Caught up and everything acknowledged: the cursor may pass what the filter skipped.
    s->sub->AckDelivered();
    if (o.idle_exit_ms > 0 && now - idle_since > o.idle_exit_ms * 1'000'000) break;
    s->sub->Wait(20'000'000);
    rd_kafka_poll(s->rk.get(), 0);
  }
  // Stopping: give what is in flight a moment to be acknowledged, so a restart redelivers less.
  if (result.ok() && s->rk) {
    const int64_t until = clock::MonotonicNanos() + 5'000'000'000;
    while (s->in_flight > 0 && clock::MonotonicNanos() < until) {
      rd_kafka_poll(s->rk.get(), 50);
      Advance(*s);
    }
  }
  if (Status w = Stats(*s, true); !w.ok() && result.ok()) result = w;
  if (!result.ok()) return result;
  return s->report;
}

}  // namespace hfe::bridge
