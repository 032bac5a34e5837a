// debug-events: the troubleshooting commands of the Host Factory documentation.
//   hostfactory debug-events --show-handlers | --show-handler-mappings | --store-health |
//                            --list-recent-events [--count N] | --test-store
#include <iostream>

#include "handlers/envelope.h"
#include "handlers/event_json.h"
#include "handlers/handler.h"
#include "handlers/workflow/command_bus.h"
#include "handlers/workflow/workflow_handler.h"
#include "ipc/clock.h"
#include "tools/bridge/bridge.h"
#include "tools/cli_common.h"

namespace hfe::tools {
namespace {

// The built-in handlers as `handle` registers them (every one for every event type but the workflows, which
// serve request and machine events; notification and performance decide per event in CanHandle/Handle).
struct BuiltIn {
  const char* name;
  const char* does;
};
constexpr BuiltIn kBuiltIns[] = {
    {"print", "each event as a JSON line on stdout"},
    {"count", "a running count per event type on stderr"},
    {"audit", "DIR/audit.jsonl: one audit entry per event (REQUEST_CREATED, ...), rotated, resumable"},
    {"notification", "DIR/notifications.jsonl (request completed/failed), DIR/alerts.jsonl (error-like events), hook"},
    {"metrics", "DIR/metrics.prom and http://127.0.0.1:N/metrics (Prometheus text format)"},
    {"performance", "event processing latency per type; slow operations as events in $performance"},
    {"workflow", "request and machine workflows: commands to the provider over the store's command bus"},
};

class Named : public handlers::Handler {
 public:
  explicit Named(const char* n) : n_(n) {}
  std::string_view name() const override { return n_; }
  Status Handle(const handlers::Event&) override { return Status::Ok(); }

 private:
  const char* n_;
};

struct DebugArgs {
  bool handlers = false, mappings = false, health = false, recent = false, test = false;
  uint64_t count = 20;
};

int Debug(const GlobalOptions& g, const DebugArgs& a) {
  int chosen = a.handlers + a.mappings + a.health + a.recent + a.test;
  if (chosen != 1) {
    return Fail("debug-events: choose one of --show-handlers, --show-handler-mappings, --store-health, "
                "--list-recent-events, --test-store; found " + std::to_string(chosen));
  }
  if (a.handlers) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& b : kBuiltIns) {
      if (g.json) j.push_back({{"handler", b.name}, {"does", b.does}, {"event_types", "all"}});
      else std::printf("%-13s %s\n", b.name, b.does);
    }
    if (g.json) std::cout << j.dump() << "\n";
    return 0;
  }
  if (a.mappings) {
    handlers::Registry reg;
    for (const auto& b : kBuiltIns) {
      if (std::string_view(b.name) != "workflow") reg.RegisterAll(std::make_shared<Named>(b.name));
    }
    // The workflows serve request and machine events only; these instances are never called.
    handlers::RequestWorkflowHandler::RegisterIn(reg, std::make_shared<handlers::RequestWorkflowHandler>(nullptr));
    handlers::MachineWorkflowHandler::RegisterIn(reg, std::make_shared<handlers::MachineWorkflowHandler>(nullptr));
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [type, names] : reg.Mappings()) {
      if (g.json) j[type] = names;
      else {
        std::string line;
        for (const auto& n : names) line += (line.empty() ? "" : ", ") + n;
        std::printf("%-36s %s\n", type.c_str(), line.c_str());
      }
    }
    if (g.json) std::cout << j.dump() << "\n";
    return 0;
  }
  auto s = OpenStore(g, false);
  if (!s.ok()) return Fail(s.status());
  if (a.health) {
    auto rep = (*s)->Verify();
    if (!rep.ok()) return Fail(rep.status());
    store::StoreStats st = (*s)->Stats();
    nlohmann::json j{{"healthy", rep->ok()}, {"events", st.events}, {"streams", st.streams}, {"segments", st.segments},
                     {"damaged_frames", rep->damaged}, {"unresolved_bytes", st.tail_position - st.resolved_position},
                     {"problems", rep->problems}};
    auto bus = handlers::InspectCommandBus((*s)->dir());
    if (!bus.ok()) return Fail(bus.status());
    if (bus->exists) {
      nlohmann::json senders = nlohmann::json::array();
      for (const auto& x : bus->senders) {
        senders.push_back({{"pid", x.pid}, {"alive", x.alive}, {"pushed", x.pushed}, {"waited_full", x.full},
                           {"pending", x.pending}});
      }
      j["command_bus"] = {{"receiver_pid", bus->receiver_pid}, {"received", bus->received},
                          {"pending", bus->pending}, {"senders", senders}};
    }
    // The Kafka bridges that ran on this store, from their stats files: lag and the last error.
    auto bridges = bridge::ReadStats((*s)->dir());
    if (!bridges.empty()) j["bridges"] = bridges;
    if (g.json) std::cout << j.dump() << "\n";
    else {
      std::printf("%s: %llu events in %llu streams, %llu segment(s), %llu damaged frame(s), %llu unresolved bytes\n",
                  rep->ok() ? "healthy" : "DAMAGED", static_cast<unsigned long long>(st.events),
                  static_cast<unsigned long long>(st.streams), static_cast<unsigned long long>(st.segments),
                  static_cast<unsigned long long>(rep->damaged),
                  static_cast<unsigned long long>(st.tail_position - st.resolved_position));
      if (bus->exists) {
        std::printf("command bus: %s, %llu command(s) received, %llu pending, %zu sender slot(s) used\n",
                    bus->receiver_pid ? ("provider pid " + std::to_string(bus->receiver_pid)).c_str() : "no provider attached",
                    static_cast<unsigned long long>(bus->received), static_cast<unsigned long long>(bus->pending),
                    bus->senders.size());
      }
      for (const auto& x : bridges) {
        const bool exp = x.value("kind", "") == "export";
        std::string lag = exp ? "lag " + std::to_string(x.value("lag_bytes", 0ull)) + " bytes, " +
                                    std::to_string(x.value("in_flight", 0ull)) + " in flight"
                              : "lag " + std::to_string(x.value("lag_records", 0ll)) + " records, " +
                                    std::to_string(x.value("parked_total", 0ull)) + " parked";
        std::string err = x.value("last_error", "");
        std::printf("bridge %s %s -> topic %s: %s (pid %d), %s%s%s\n", x.value("kind", "").c_str(),
                    x.value("name", "").c_str(), x.value("topic", "").c_str(),
                    x.value("alive", false) ? "running" : "not running", x.value("pid", 0), lag.c_str(),
                    err.empty() ? "" : "; last error: ", err.c_str());
      }
    }
    return rep->ok() ? 0 : 1;
  }
  if (a.recent) {
    auto json = handlers::EventJson::Create();
    if (!json.ok()) return Fail(json.status());
    Status st = (*s)->ReadLast(a.count, [&](const store::EventView& v) {
      std::cout << (*json)->Line(v).dump() << "\n";
      return true;
    });
    return st.ok() ? 0 : Fail(st);
  }
  // --test-store: append a probe to the store's own "$health" stream and read it back.
  flatbuffers::FlatBufferBuilder b;
  auto body = schema::CreateHealthCheckEventDirect(b, "hostfactory", nullptr, "store_probe", "healthy");
  handlers::EnvelopeMeta meta;
  meta.event_id = store::EventId::Random();
  meta.stream_id = "$health";
  meta.stream_type = "health";
  store::EventData d;
  handlers::FinishEnvelope(b, meta, schema::EventBody::HealthCheckEvent, body.Union(), &d);
  int64_t t0 = clock::MonotonicNanos();
  uint64_t pos = 0;
  auto r = (*s)->AppendSystem("$health", store::ExpectedVersion::Any(), {&d, 1}, {&pos, 1});
  if (!r.ok()) return Fail("store test: append failed: " + r.status().message());
  bool found = false;
  Status st = (*s)->ReadStream("$health", r->last_version, [&](const store::EventView& v) {
    found = v.id == meta.event_id && v.position == pos;
    return false;
  });
  int64_t us = (clock::MonotonicNanos() - t0) / 1000;
  if (!st.ok() || !found) return Fail("store test: the probe appended at " + std::to_string(pos) + " was not read back");
  if (g.json) std::cout << nlohmann::json{{"ok", true}, {"position", pos}, {"round_trip_us", us}}.dump() << "\n";
  else std::printf("store ok: probe appended at position %llu and read back in %lld us\n",
                   static_cast<unsigned long long>(pos), static_cast<long long>(us));
  return 0;
}

}  // namespace

void AddDebugVerb(CLI::App& app, GlobalOptions& g, int& rc) {
  auto a = std::make_shared<DebugArgs>();
  auto* d = app.add_subcommand("debug-events", "troubleshooting: handlers, mappings, store health, recent events, a store probe");
  d->add_flag("--show-handlers", a->handlers, "the built-in handlers and what they do");
  d->add_flag("--show-handler-mappings", a->mappings, "event type -> handlers");
  d->add_flag("--store-health", a->health, "verify the store; non-zero exit when damaged");
  d->add_flag("--list-recent-events", a->recent, "the newest events as JSON lines (--count N)");
  d->add_option("--count", a->count, "with --list-recent-events")->capture_default_str();
  d->add_flag("--test-store", a->test, "append a probe event to $health and read it back");
  d->callback([&g, &rc, a] { rc = Debug(g, *a); });
}

}  // namespace hfe::tools
