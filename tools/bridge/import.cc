// bridge import: a topic's records appended into the local store through a Kafka consumer group.
//
// Each record is appended as the event its headers describe, at exactly the version it had at the source
// (expected version: the version before it, or no stream for version 0), with its event id, so:
//  - a redelivered record (already appended) counts as done: the store's dedup window answers, and past the
//    window the event found at that version with the same id does;
//  - a record ahead of the local stream (a gap: an earlier record is missing) or one that cannot be decoded is
//    poison: it is parked in "$parked-kafka:<topic>@<group>" with its error and passed, never retried forever.
// Offsets are committed (manual commit) only for records whose append returned, so a crash redelivers and
// the dedup makes the redelivery harmless: exactly once into the store.
// A local store failure that is no fault of the record (e.g. no space left) ends the run with an error and
// the record's offset uncommitted; a restart retries it.
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <vector>

#include <unistd.h>

#include "handlers/envelope.h"
#include "ipc/clock.h"
#include "store/consumer_group.h"
#include "tools/bridge/bridge.h"
#include "tools/bridge/kafka.h"

namespace hfe::bridge {
namespace {

struct PartitionState {
  int64_t done = -1;       // next offset to commit (one past the last applied record), -1: none yet
  int64_t committed = -1;  // what the last commit stored
  bool eof = false;        // reached the partition's end with nothing applied since
};

struct ImportState {
  ImportState(const ImportOptions& opts, store::EventStore& st)
      : o(opts), store(st), owner(ImportParkOwner(opts.topic, opts.group)) {}
  const ImportOptions& o;
  store::EventStore& store;
  std::string owner;  // where poison records are parked
  KafkaPtr rk;
  std::map<int32_t, PartitionState> parts;  // the current assignment
  bool assigned_once = false;
  uint64_t consumer_errors = 0, commit_errors = 0;
  size_t uncommitted = 0;
  ImportReport report;
  std::string last_error;
  int64_t last_error_at_ns = 0;
  std::string printed;
  int64_t printed_at = 0;
  bool debug = false;
  int64_t started_ns = clock::WallNanos();
  std::vector<uint64_t> aligned;  // a record's value, copied when it is not 8-byte aligned

  void Error(const std::string& text) {
    last_error = text;
    last_error_at_ns = clock::WallNanos();
    const int64_t now = clock::MonotonicNanos();
    if (text == printed && now - printed_at < 10'000'000'000) return;
    printed = text;
    printed_at = now;
    std::fprintf(stderr, "hostfactory bridge import: %s\n", text.c_str());
  }
};

// Commits the applied offsets of the partitions in `only` (all assigned when null). Synchronous. `rk` is
// passed in because the rebalance callback also commits, while the handle is being closed.
void Commit(ImportState& s, rd_kafka_t* rk, const rd_kafka_topic_partition_list_t* only = nullptr) {
  PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(s.parts.size())));
  for (auto& [p, st] : s.parts) {
    if (st.done < 0 || st.done == st.committed) continue;
    if (only && !rd_kafka_topic_partition_list_find(only, s.o.topic.c_str(), p)) continue;
    rd_kafka_topic_partition_list_add(list.get(), s.o.topic.c_str(), p)->offset = st.done;
  }
  if (list->cnt == 0) {
    if (!only) s.uncommitted = 0;
    return;
  }
  rd_kafka_resp_err_t err = rd_kafka_commit(rk, list.get(), 0);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++s.commit_errors;
    s.Error(std::string("offset commit failed: ") + rd_kafka_err2str(err) + " (" + rd_kafka_err2name(err) +
            "); the records stay applied and a redelivery of them will be recognised as duplicates");
    return;
  }
  ++s.report.commits;
  for (int i = 0; i < list->cnt; ++i) s.parts[list->elems[i].partition].committed = list->elems[i].offset;
  if (!only) s.uncommitted = 0;
}

void OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts, void* opaque) {
  auto* s = static_cast<ImportState*>(opaque);
  const bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    for (int i = 0; i < parts->cnt; ++i) s->parts[parts->elems[i].partition] = PartitionState{};
    s->assigned_once = true;
    if (cooperative) rd_kafka_error_destroy(rd_kafka_incremental_assign(rk, parts));
    else rd_kafka_assign(rk, parts);
    return;
  }
  // Revoked (or lost): commit what was applied while the partitions are still ours, then let them go.
  if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS && !rd_kafka_assignment_lost(rk)) Commit(*s, rk, parts);
  for (int i = 0; i < parts->cnt; ++i) s->parts.erase(parts->elems[i].partition);
  if (cooperative) rd_kafka_error_destroy(rd_kafka_incremental_unassign(rk, parts));
  else rd_kafka_assign(rk, nullptr);
}

void OnError(rd_kafka_t*, int err, const char* reason, void* opaque) {
  auto* s = static_cast<ImportState*>(opaque);
  ++s->consumer_errors;
  s->Error(std::string("kafka: ") + reason + " (" + rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)) +
           "); the bridge keeps retrying");
}

void OnLog(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
  auto* s = static_cast<ImportState*>(rd_kafka_opaque(rk));
  if (level <= 2 || (s && s->debug)) std::fprintf(stderr, "hostfactory bridge import: librdkafka %s: %s\n", fac, buf);
}

Result<KafkaConf> ConsumerConf(const ImportOptions& o) {
  auto conf = KafkaConf::Create({{"bootstrap.servers", o.brokers},
                                 {"group.id", o.group},
                                 {"enable.auto.commit", "false"},
                                 {"enable.auto.offset.store", "false"},
                                 {"auto.offset.reset", "earliest"},
                                 {"enable.partition.eof", "true"}});
  if (!conf.ok()) return conf.status();
  for (const auto& p : o.properties) HFE_RETURN_IF_ERROR(conf->SetAssignment(p));
  char v[16] = {0};
  size_t n = sizeof v;
  if (rd_kafka_conf_get(conf->get(), "enable.auto.commit", v, &n) == RD_KAFKA_CONF_OK && std::string(v) != "false") {
    return InvalidArgument("-X enable.auto.commit=" + std::string(v) +
                           ": the import commits offsets itself, after each local append; remove that property");
  }
  return conf;
}

// What became of one record.
enum class Outcome { kAppended, kDuplicate, kParked };

// Parks a poison record with its error; its identity is what its headers say, or its place in the topic.
Result<Outcome> Park(ImportState& s, const rd_kafka_message_t* m, const store::EventView& v, const std::string& why) {
  store::EventView pv = v;
  pv.position = static_cast<uint64_t>(m->offset);
  if (pv.id.IsNil()) {
    // No usable id: one derived from topic, partition and offset, so parking it again is idempotent.
    pv.id.hi = std::hash<std::string>{}(s.o.topic) ^ (static_cast<uint64_t>(m->partition) << 32);
    pv.id.lo = static_cast<uint64_t>(m->offset);
  }
  const std::string where = "topic " + s.o.topic + " partition " + std::to_string(m->partition) + " offset " +
                            std::to_string(m->offset);
  Status err(StatusCode::kInvalidArgument, where + ": " + why);
  Status st = store::GroupMember::Park(s.store, s.owner, pv, err, 1);
  if (!st.ok()) return Status(st.code(), "cannot park the poison record at " + where + ": " + st.message());
  ++s.report.parked;
  s.Error("parked the record at " + where + " in $parked-" + s.owner + ": " + why);
  return Outcome::kParked;
}

Result<Outcome> Apply(ImportState& s, const rd_kafka_message_t* m) {
  store::EventView v;  // the record as an event, for parking
  auto id_h = HeaderText(m, kHeaderEventId);
  auto stream_h = HeaderText(m, kHeaderStream);
  auto version_h = HeaderText(m, kHeaderVersion);
  auto type_h = HeaderText(m, kHeaderType);
  auto occurred_h = HeaderText(m, kHeaderOccurredAt);
  std::optional<store::EventId> id = id_h ? store::EventId::Parse(*id_h) : std::nullopt;
  if (id) v.id = *id;
  if (stream_h) v.stream = *stream_h;
  std::optional<uint64_t> version = version_h ? ParseU64(*version_h) : std::nullopt;
  uint32_t type = 0;
  if (type_h) {
    type = handlers::EventTypeNumber(*type_h);
    if (type == 0) {
      auto n = ParseU64(*type_h);
      if (n && *n > 0 && *n <= UINT32_MAX) type = static_cast<uint32_t>(*n);
    }
  }
  v.type = type;
  if (!id || id->IsNil()) return Park(s, m, v, "expected an 'event-id' header holding a UUID; found none or a bad one");
  if (!stream_h) return Park(s, m, v, "expected a 'stream' header; found none");
  if (Status n = store::EventStore::CheckStreamName(*stream_h); !n.ok()) {
    return Park(s, m, v, "the 'stream' header is not a valid stream name: " + n.message());
  }
  if (!version) return Park(s, m, v, "expected a 'version' header holding a decimal number; found none or a bad one");
  if (type == 0) return Park(s, m, v, "expected an 'event-type' header naming an event type; found none or an unknown one");
  std::span<const uint8_t> payload(static_cast<const uint8_t*>(m->payload), m->len);
  if (reinterpret_cast<uintptr_t>(m->payload) % alignof(uint64_t) != 0) {
    // FlatBuffers reads its fields in place and needs them aligned; a record's value can sit anywhere.
    s.aligned.resize((m->len + sizeof(uint64_t) - 1) / sizeof(uint64_t));
    if (m->len > 0) std::memcpy(s.aligned.data(), m->payload, m->len);
    payload = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.aligned.data()), m->len);
  }
  const schema::Envelope* env = handlers::VerifiedEnvelope(payload);
  if (!env) return Park(s, m, v, "the value is not a valid hfevents Envelope (FlatBuffers verification failed)");
  if (env->event_id() && (env->event_id()->hi() != id->hi || env->event_id()->lo() != id->lo)) {
    return Park(s, m, v, "the 'event-id' header does not match the envelope's event_id");
  }
  int64_t occurred = env->occurred_at_ns();
  if (occurred_h) {
    if (auto t = ParseI64(*occurred_h)) occurred = *t;
  }
  store::EventData d{*id, type, occurred, payload};
  const store::ExpectedVersion expected =
      *version == 0 ? store::ExpectedVersion::NoStream() : store::ExpectedVersion::Exact(*version - 1);
  const bool own = !stream_h->empty() && (*stream_h)[0] == '$';
  auto r = own ? s.store.AppendSystem(*stream_h, expected, {&d, 1}) : s.store.Append(*stream_h, expected, {&d, 1});
  if (r.ok()) return r->already_appended ? Outcome::kDuplicate : Outcome::kAppended;
  if (r.status().code() != StatusCode::kWrongExpectedVersion) {
    return Status(r.status().code(), "appending the record of stream \"" + std::string(*stream_h) + "\" version " +
                                         std::to_string(*version) + " failed: " + r.status().message() +
                                         " (its offset stays uncommitted; fix the store and run the import again)");
  }
  const store::StreamInfo info = s.store.GetStream(*stream_h);
  if (*version < info.next_version) {
    // Older than the local stream: a redelivery past the dedup window when the same id sits at that version.
    bool same = false;
    Status rs = s.store.ReadStream(*stream_h, *version, [&](const store::EventView& e) {
      same = e.version == *version && e.id == *id;
      return false;
    });
    if (rs.ok() && same) return Outcome::kDuplicate;
    return Park(s, m, v, "stream \"" + std::string(*stream_h) + "\" already holds another event at version " +
                             std::to_string(*version) + " (the local store was written by someone else too)");
  }
  return Park(s, m, v, "gap: the record is version " + std::to_string(*version) + " of stream \"" +
                           std::string(*stream_h) + "\" but the local stream " +
                           (info.exists ? "ends at version " + std::to_string(info.next_version - 1)
                                        : std::string("does not exist")) +
                           " (an earlier record is missing or was parked; replay it first)");
}

int64_t Lag(ImportState& s) {
  int64_t lag = 0;
  for (const auto& [p, st] : s.parts) {
    int64_t lo = 0, hi = 0;
    if (rd_kafka_get_watermark_offsets(s.rk.get(), s.o.topic.c_str(), p, &lo, &hi) != RD_KAFKA_RESP_ERR_NO_ERROR) continue;
    const int64_t at = st.done >= 0 ? st.done : lo;
    if (hi > at) lag += hi - at;
  }
  return lag;
}

Status Stats(ImportState& s, bool final) {
  if (s.o.stats_file.empty()) return Status::Ok();
  nlohmann::json j{{"kind", "import"},
                   {"name", s.o.group},
                   {"topic", s.o.topic},
                   {"brokers", s.o.brokers},
                   {"pid", ::getpid()},
                   {"final", final},
                   {"started_at", clock::FormatIso8601(s.started_ns)},
                   {"updated_at", clock::FormatIso8601(clock::WallNanos())},
                   {"consumed_total", s.report.consumed},
                   {"appended_total", s.report.appended},
                   {"duplicates_total", s.report.duplicates},
                   {"parked_total", s.report.parked},
                   {"commits_total", s.report.commits},
                   {"commit_errors_total", s.commit_errors},
                   {"consumer_errors_total", s.consumer_errors},
                   {"assigned_partitions", s.parts.size()},
                   {"lag_records", Lag(s)},
                   {"last_error", s.last_error},
                   {"last_error_at", s.last_error_at_ns ? clock::FormatIso8601(s.last_error_at_ns) : ""}};
  return WriteStats(s.o.stats_file, j);
}

bool CaughtUp(const ImportState& s) {
  if (!s.assigned_once || s.uncommitted > 0) return false;
  for (const auto& [p, st] : s.parts) {
    if (!st.eof) return false;
  }
  return true;
}

}  // namespace

Status CheckImportOptions(const ImportOptions& o) {
  if (o.brokers.empty()) return InvalidArgument("--brokers: expected HOST:PORT[,...]; found nothing");
  if (o.topic.empty()) return InvalidArgument("--topic: expected a topic name; found nothing");
  if (o.group.empty()) return InvalidArgument("--group: expected a consumer group id; found nothing");
  HFE_RETURN_IF_ERROR(store::EventStore::CheckName(ImportParkOwner(o.topic, o.group), "--topic and --group", 900));
  auto conf = ConsumerConf(o);
  return conf.ok() ? Status::Ok() : conf.status();
}

Result<ImportReport> RunImport(store::EventStore& store, const ImportOptions& o) {
  HFE_RETURN_IF_ERROR(CheckImportOptions(o));
  auto s = std::make_unique<ImportState>(o, store);
  auto conf = ConsumerConf(o);
  if (!conf.ok()) return conf.status();
  size_t dn = 0;  // the length of the debug property's value, with its NUL: more than 1 when it is set
  s->debug = rd_kafka_conf_get(conf->get(), "debug", nullptr, &dn) == RD_KAFKA_CONF_OK && dn > 1;
  rd_kafka_conf_set_opaque(conf->get(), s.get());
  rd_kafka_conf_set_rebalance_cb(conf->get(), OnRebalance);
  rd_kafka_conf_set_error_cb(conf->get(), OnError);
  rd_kafka_conf_set_log_cb(conf->get(), OnLog);
  auto rk = NewKafka(RD_KAFKA_CONSUMER, std::move(*conf));
  if (!rk.ok()) return rk.status();
  s->rk = std::move(*rk);
  rd_kafka_poll_set_consumer(s->rk.get());
  PartitionListPtr topics(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(topics.get(), o.topic.c_str(), RD_KAFKA_PARTITION_UA);
  if (rd_kafka_resp_err_t err = rd_kafka_subscribe(s->rk.get(), topics.get()); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return KafkaStatus("subscribing to topic '" + o.topic + "'", err);
  }
  int64_t idle_since = clock::MonotonicNanos(), stats_at = 0, committed_at = clock::MonotonicNanos();
  Status result;
  while (!(o.stop && *o.stop)) {
    const int64_t now = clock::MonotonicNanos();
    if (now - stats_at > o.stats_interval_ms * 1'000'000) {
      stats_at = now;
      if (Status w = Stats(*s, false); !w.ok()) s->Error("stats: " + w.message());
    }
    MessagePtr m(rd_kafka_consumer_poll(s->rk.get(), 50));
    if (m) {
      auto it = s->parts.find(m->partition);
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (it != s->parts.end()) it->second.eof = true;
      } else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        ++s->consumer_errors;
        s->Error("consuming topic '" + o.topic + "': " + rd_kafka_message_errstr(m.get()) + " (" +
                 rd_kafka_err2name(m->err) + ")");
      } else {
        ++s->report.consumed;
        auto out = Apply(*s, m.get());
        if (!out.ok()) {
          result = out.status();
          break;
        }
        if (*out == Outcome::kAppended) ++s->report.appended;
        if (*out == Outcome::kDuplicate) ++s->report.duplicates;
        // The append returned (or the record was parked): its offset may be committed.
        if (it != s->parts.end()) {
          it->second.done = m->offset + 1;
          it->second.eof = false;
        }
        ++s->uncommitted;
        idle_since = now;
      }
    }
    const bool quiet = !m || m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF;
    if (s->uncommitted > 0 &&
        (s->uncommitted >= o.commit_every || quiet || now - committed_at > o.commit_interval_ms * 1'000'000)) {
      Commit(*s, s->rk.get());
      committed_at = now;
    }
    if (!CaughtUp(*s)) idle_since = now;
    if (o.idle_exit_ms > 0 && now - idle_since > o.idle_exit_ms * 1'000'000) break;
  }
  Commit(*s, s->rk.get());
  if (Status w = Stats(*s, true); !w.ok() && result.ok()) result = w;
  s->rk.reset();  // leaves the group; the rebalance callback runs here, with the state still alive
  if (!result.ok()) return result;
  return s->report;
}

}  // namespace hfe::bridge
