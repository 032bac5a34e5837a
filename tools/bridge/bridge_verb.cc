// bridge: the `hostfactory bridge export|import` verbs (options, validation, signals, exit codes).
//   hostfactory [--store DIR] bridge export --brokers HOST:PORT[,...] --topic T [--subscription NAME]
//       [--types T,...] [--stream-prefix P] [--batch-size N] [--linger-ms N] [--max-in-flight N]
//       [-X key=value ...] [--idle-exit-ms N] [--stats-file F]
//   hostfactory [--store DIR] bridge import --brokers HOST:PORT[,...] --topic T --group G
//       [-X key=value ...] [--idle-exit-ms N] [--stats-file F]
// Exit codes: 0 done (stopped by a signal or idle past --idle-exit-ms), 1 a failure, 2 bad usage (nothing
// is opened or written).
#include <sys/resource.h>

#include <cerrno>
#include <csignal>
#include <sstream>

#include "handlers/envelope.h"
#include "tools/bridge/bridge.h"
#include "tools/cli_common.h"

namespace hfe::tools {
namespace {

volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

constexpr const char* kExportExample = R"(
Example (a local Kafka; -X passes any librdkafka property, security included):
  hostfactory --store /dev/shm/hfevents bridge export --brokers kafka-1:9092,kafka-2:9092 \
      --topic hostfactory-events --types RequestCreatedEvent,RequestCompletedEvent \
      -X security.protocol=SASL_SSL -X sasl.mechanisms=SCRAM-SHA-512 \
      -X sasl.username=hf -X sasl.password=secret
Each event becomes one record: key = stream, value = the FlatBuffers Envelope (schemas/events.fbs), headers
event-id, event-type, stream, version, position, occurred-at. The cursor of the durable subscription
(default bridge-<topic>) advances only through events the brokers acknowledged: at-least-once, in order per
stream. Lag and errors: `hostfactory subscriptions`, `debug-events --store-health`, and the stats files
<store>/bridge/export.<subscription>.{json,prom}. Exit codes: 0 done, 1 failure, 2 bad usage.)";

constexpr const char* kImportExample = R"(
Example:
  hostfactory --store /dev/shm/hfevents-b bridge import --brokers kafka-1:9092 \
      --topic hostfactory-events --group host-b
Each record is appended at the version it had at the source, deduplicated by event id, and its offset is
committed only after the append returned: exactly once into the store. A record that cannot be placed (a gap
in its stream, a bad header, a value that is not an Envelope) is parked with its error, listed by
`hostfactory parked --subscription kafka:<topic> --group <group>`. The store is created if missing.
Stats: <store>/bridge/import.<group>.{json,prom}. Exit codes: 0 done, 1 failure, 2 bad usage.)";

int Usage(const Status& s) {
  std::fprintf(stderr, "hostfactory bridge: %s\n", s.message().c_str());
  return 2;
}

void Report(const char* what, const std::string& line) {
  std::fprintf(stderr, "hostfactory bridge %s: %s\n", what, line.c_str());
}

int Export(const GlobalOptions& g, bridge::ExportOptions o, const std::string& types, int nice) {
  for (const auto& t : Split(types)) {
    uint32_t n = handlers::EventTypeNumber(t);
    if (n == 0) return Usage(InvalidArgument("--types: unknown event type '" + t + "' (`hostfactory types` lists them)"));
    o.types.push_back(n);
  }
  if (o.subscription.empty()) o.subscription = "bridge-" + o.topic;
  if (nice < 0 || nice > 19) return Usage(InvalidArgument("--nice: expected 0..19; found " + std::to_string(nice)));
  if (Status c = bridge::CheckExportOptions(o); !c.ok()) return Usage(c);
  auto s = OpenStore(g, false);
  if (!s.ok()) return Fail(s.status());
  if (o.stats_file.empty()) o.stats_file = bridge::DefaultStatsPath(g.store, "export", o.subscription);
  // Background work: the local producers win the CPU. Set before librdkafka starts its threads (they inherit it).
  errno = 0;
  const int now = ::getpriority(PRIO_PROCESS, 0);
  if (errno == 0 && nice > now && ::setpriority(PRIO_PROCESS, 0, nice) != 0) {
    std::fprintf(stderr, "hostfactory bridge export: cannot lower the priority to nice %d; running at the current one\n", nice);
  }
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  o.stop = &g_stop;
  auto r = bridge::RunExport(**s, o);
  if (!r.ok()) return Fail(r.status());
  Report("export", std::to_string(r->acked) + " event(s) acknowledged by the brokers, " + std::to_string(r->produced) +
                       " record(s) produced, " + std::to_string(r->delivery_errors) + " delivery error(s), " +
                       std::to_string(r->rewinds) + " rewind(s)");
  return 0;
}

int Import(const GlobalOptions& g, bridge::ImportOptions o) {
  if (Status c = bridge::CheckImportOptions(o); !c.ok()) return Usage(c);
  auto s = OpenStore(g, /*create=*/true);
  if (!s.ok()) return Fail(s.status());
  if (o.stats_file.empty()) o.stats_file = bridge::DefaultStatsPath(g.store, "import", o.group);
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  o.stop = &g_stop;
  auto r = bridge::RunImport(**s, o);
  if (!r.ok()) return Fail(r.status());
  Report("import", std::to_string(r->consumed) + " record(s) consumed: " + std::to_string(r->appended) +
                       " appended, " + std::to_string(r->duplicates) + " already there, " +
                       std::to_string(r->parked) + " parked");
  return 0;
}

void CommonOptions(CLI::App* c, bridge::CommonOptions& o) {
  c->add_option("--brokers", o.brokers, "Kafka bootstrap servers, HOST:PORT[,...]")->required();
  c->add_option("--topic", o.topic, "the Kafka topic")->required();
  c->add_option("-X", o.properties, "a librdkafka property key=value (repeatable), e.g. -X security.protocol=SSL");
  c->add_option("--idle-exit-ms", o.idle_exit_ms,
                "exit 0 once idle this long: caught up and everything acknowledged (0: run until SIGINT/SIGTERM)");
  c->add_option("--stats-file", o.stats_file,
                "stats as JSON here and Prometheus text beside it (.prom); default <store>/bridge/<kind>.<name>.json");
}

}  // namespace

void AddBridgeVerb(CLI::App& app, GlobalOptions& g, int& rc) {
  auto* b = app.add_subcommand("bridge", "the Kafka bridge: export a subscription to a topic, import a topic");
  b->require_subcommand(1);
  auto eo = std::make_shared<bridge::ExportOptions>();
  auto types = std::make_shared<std::string>();
  auto nice = std::make_shared<int>(10);
  auto* e = b->add_subcommand("export", "publish a durable subscription's events to a Kafka topic (idempotent producer)");
  CommonOptions(e, *eo);
  e->add_option("--subscription", eo->subscription, "durable subscription name (default: bridge-<topic>)");
  e->add_option("--types", *types, "event types to export, comma-separated (default: all)");
  e->add_option("--stream-prefix", eo->stream_prefix, "only streams whose name starts with this");
  e->add_option("--batch-size", eo->batch_size, "events read per poll; the producer's batch.num.messages")
      ->capture_default_str();
  e->add_option("--linger-ms", eo->linger_ms, "the producer's linger.ms")->capture_default_str();
  e->add_option("--max-in-flight", eo->max_in_flight, "events produced but not yet acknowledged, at most")
      ->capture_default_str();
  e->add_option("--nice", *nice, "run at this nice value (0..19), so local producers win the CPU")->capture_default_str();
  e->footer(kExportExample);
  e->callback([&g, &rc, eo, types, nice] { rc = Export(g, *eo, *types, *nice); });
  auto io = std::make_shared<bridge::ImportOptions>();
  auto* i = b->add_subcommand("import", "append a Kafka topic's records into this store (consumer group, exactly once)");
  CommonOptions(i, *io);
  i->add_option("--group", io->group, "the consumer group id")->required();
  i->footer(kImportExample);
  i->callback([&g, &rc, io] { rc = Import(g, *io); });
}

}  // namespace hfe::tools
