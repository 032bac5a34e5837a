// handle: a handler process attached to a durable subscription; subscriptions: list them; parked: list or
// replay a group's parked events.
//   hostfactory handle --subscription NAME [--group G] [--types T,...] [--stream-prefix P]
//                      [--from beginning|end|P|ISO8601] [--wait spin|yield|park]
//                      --handler print,count,audit,notification,workflow,metrics,performance [--out DIR]
//                      [--max-events N] [--idle-exit-ms M] [--stats-file F]
// --idle-exit-ms M exits after M ms without events; a group member waits until its whole group is caught up
// (lag 0), since the partitions of a member that died or went silent may still come to it.
// print writes each event as a JSON line on stdout (the keys of `read`); count keeps a running count per event
// type on stderr; the others are the handlers of handlers/. Events are acknowledged once every handler
// finished them and made its effects durable (handlers::HandlerHost).
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <map>
#include <sstream>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <mutex>

#include "handlers/audit/audit_handler.h"
#include "handlers/monitoring/metrics_handler.h"
#include "handlers/monitoring/performance_handler.h"
#include "handlers/notification/notification_handler.h"
#include "handlers/dispatcher.h"
#include "handlers/host.h"
#include "handlers/replayer.h"
#include "handlers/workflow/workflow_handler.h"
#include "handlers/envelope.h"
#include "handlers/event_json.h"
#include "ipc/clock.h"
#include "store/consumer_group.h"
#include "store/subscription.h"
#include "tools/cli_common.h"
#include "tools/json_codec.h"

namespace hfe::tools {
namespace {

volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

struct HandleArgs {
  std::string subscription, group, types, prefix, from = "beginning", wait = "park", handlers = "print", out = ".";
  int metrics_port = 0;
  std::string notify_hook;
  double slow_ms = 5000;
  uint64_t max_events = 0;
  int64_t idle_exit_ms = 0;
  std::string stats_file;
};

// print: each event as a JSON line on stdout (the keys of `read`).
class PrintHandler : public handlers::Handler {
 public:
  explicit PrintHandler(std::unique_ptr<handlers::EventJson> json) : json_(std::move(json)) {}
  std::string_view name() const override { return "print"; }
  Status Handle(const handlers::Event& e) override {
    std::string line = json_->Line(e.view).dump() + "\n";
    if (std::fwrite(line.data(), 1, line.size(), stdout) != line.size()) return IoError("stdout closed");
    std::fflush(stdout);
    return Status::Ok();
  }

 private:
  std::unique_ptr<handlers::EventJson> json_;
};

// count: a running count per event type, reported on stderr.
class CountHandler : public handlers::Handler {
 public:
  std::string_view name() const override { return "count"; }
  Status Handle(const handlers::Event& e) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++counts_[e.type_name];
    ++total_;
    return Status::Ok();
  }
  void Report() {
    std::lock_guard<std::mutex> lock(mu_);
    std::string r = "count:";
    for (const auto& [t, n] : counts_) r += " " + t + "=" + std::to_string(n);
    std::fprintf(stderr, "%s (total %llu)\n", r.c_str(), static_cast<unsigned long long>(total_));
  }

 private:
  std::mutex mu_;
  std::map<std::string, uint64_t> counts_;
  uint64_t total_ = 0;
};

// A consumer group of a subscription is named "<subscription>@<group>".
std::string GroupName(const HandleArgs& a) { return a.subscription + "@" + a.group; }

// The handlers named by --handler, registered in `registry`; `counter` and `metrics` are set when asked for.
struct BuiltHandlers {
  handlers::Registry registry;
  std::shared_ptr<CountHandler> counter;
  std::shared_ptr<handlers::MetricsHandler> metrics;
};

Status BuildHandlers(const HandleArgs& a, store::EventStore& store, BuiltHandlers* built) {
  handlers::Registry& registry = built->registry;
  auto names = Split(a.handlers);
  auto wants = [&](const char* n) { return std::find(names.begin(), names.end(), n) != names.end(); };
  auto out_dir = [&]() -> Status {
    std::error_code ec;
    std::filesystem::create_directories(a.out, ec);
    return ec ? IoError("cannot create --out '" + a.out + "': " + ec.message()) : Status::Ok();
  };
  if (wants("metrics") || wants("performance")) {
    HFE_RETURN_IF_ERROR(out_dir());
    handlers::MetricsOptions mo;
    mo.path = a.out + "/metrics.prom";
    mo.port = a.metrics_port;
    auto m = handlers::MetricsHandler::Open(mo);
    if (!m.ok()) return m.status();
    built->metrics = *m;
  }
  for (const auto& h : names) {
    if (h == "print") {
      auto json = handlers::EventJson::Create();
      if (!json.ok()) return json.status();
      registry.RegisterAll(std::make_shared<PrintHandler>(std::move(*json)));
    } else if (h == "count") {
      built->counter = std::make_shared<CountHandler>();
      registry.RegisterAll(built->counter);
    } else if (h == "audit") {
      HFE_RETURN_IF_ERROR(out_dir());
      auto audit = handlers::AuditHandler::Open({a.out + "/audit.jsonl"});
      if (!audit.ok()) return audit.status();
      registry.RegisterAll(*audit);
    } else if (h == "metrics") {
      registry.RegisterAll(built->metrics);
    } else if (h == "notification") {
      HFE_RETURN_IF_ERROR(out_dir());
      handlers::NotificationOptions no;
      no.dir = a.out;
      no.hook = a.notify_hook;
      auto n = handlers::NotificationHandler::Open(no);
      if (!n.ok()) return n.status();
      registry.RegisterAll(*n);
    } else if (h == "workflow") {
      HFE_RETURN_IF_ERROR(handlers::RegisterWorkflowHandlers(registry, store.dir()));
    } else if (h == "performance") {
      handlers::PerformanceOptions po;
      po.slow_threshold_seconds = a.slow_ms / 1000.0;
      po.metrics = built->metrics;
      registry.RegisterAll(std::make_shared<handlers::PerformanceHandler>(store, po));
    } else {
      return InvalidArgument("--handler: unknown handler '" + h +
                             "' (built in: print, count, audit, notification, workflow, metrics, performance)");
    }
  }
  if (registry.handlers().empty()) return InvalidArgument("--handler: name at least one handler (print, count, audit, ...)");
  return Status::Ok();
}

int Handle(const GlobalOptions& g, const HandleArgs& a) {
  store::SubscriptionOptions o;
  for (const auto& t : Split(a.types)) {
    uint32_t n = handlers::EventTypeNumber(t);
    if (n == 0) return Fail("--types: unknown event type '" + t + "' (`hostfactory types` lists them)");
    o.types.push_back(n);
  }
  o.stream_prefix = a.prefix;
  if (a.from == "beginning") {
    o.start = store::SubscriptionOptions::Start::kBeginning;
  } else if (a.from == "end") {
    o.start = store::SubscriptionOptions::Start::kEnd;
  } else if (auto t = clock::ParseIso8601(a.from)) {
    o.start = store::SubscriptionOptions::Start::kTimestamp;
    o.timestamp_ns = *t;
  } else if (!a.from.empty() && a.from.find_first_not_of("0123456789") == std::string::npos) {
    o.start = store::SubscriptionOptions::Start::kPosition;
    o.position = std::stoull(a.from);
  } else {
    return Fail("--from: expected beginning, end, a position or an ISO 8601 time; found '" + a.from + "'");
  }
  o.wait = a.wait == "spin" ? store::WaitStrategy::kSpin
           : a.wait == "yield" ? store::WaitStrategy::kYield
                               : store::WaitStrategy::kPark;
  auto s = OpenStore(g, false);
  if (!s.ok()) return Fail(s.status());
  BuiltHandlers built;
  if (Status st = BuildHandlers(a, **s, &built); !st.ok()) return Fail(st);
  handlers::Registry& registry = built.registry;
  std::shared_ptr<CountHandler> counter = built.counter;
  std::shared_ptr<handlers::MetricsHandler> metrics = built.metrics;
  handlers::HostOptions ho;
  ho.subscription = a.subscription;
  ho.group = a.group;
  ho.filter = o;
  ho.max_events = a.max_events;
  ho.idle_exit_ms = a.idle_exit_ms;
  ho.stats_path = a.stats_file;
  if (counter) ho.every_second = [counter] { counter->Report(); };
  auto host = handlers::HandlerHost::Open(**s, registry, ho);
  if (!host.ok()) return Fail(host.status());
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  Status run = (*host)->Run(&g_stop);
  if (metrics) (void)metrics->Flush();  // the performance handler's latencies, when metrics is not a handler
  if (counter) counter->Report();
  for (const auto& st : (*host)->Stats()) {
    if (st.failed || st.parked) {
      std::fprintf(stderr, "handler %s: %llu processed, %llu failed attempts, %llu parked\n", st.handler.c_str(),
                   static_cast<unsigned long long>(st.processed), static_cast<unsigned long long>(st.failed),
                   static_cast<unsigned long long>(st.parked));
    }
  }
  return run.ok() ? 0 : Fail(run);
}

struct ReplayArgs {
  std::string from, to, types;
  HandleArgs handle;  // --handler, --out and the handlers' own options
  bool no_progress = false;
};

// replay: the events of a time range (and type set) through chosen handlers, in log order, with a progress
// bar on a terminal and a summary; one handler's failures (retried, then parked under "$parked-replay.<h>")
// never stop the replay or the other handlers.
int Replay(const GlobalOptions& g, const ReplayArgs& a) {
  handlers::ReplayOptions ro;
  if (a.from != "beginning") {
    auto t = clock::ParseIso8601(a.from);
    if (!t) return Fail("--from: expected an ISO 8601 time (e.g. 2026-11-27T10:00:00Z) or beginning; found '" + a.from + "'");
    ro.from_ns = *t;
  }
  if (!a.to.empty()) {
    auto t = clock::ParseIso8601(a.to);
    if (!t) return Fail("--to: expected an ISO 8601 time (e.g. 2026-11-27T11:00:00Z); found '" + a.to + "'");
    ro.to_ns = *t;
  }
  if (ro.to_ns < ro.from_ns) return Fail("--to is before --from; nothing to replay");
  for (const auto& t : Split(a.types)) {
    uint32_t n = handlers::EventTypeNumber(t);
    if (n == 0) return Fail("--type: unknown event type '" + t + "' (`hostfactory types` lists them)");
    ro.types.push_back(n);
  }
  auto s = OpenStore(g, false);
  if (!s.ok()) return Fail(s.status());
  BuiltHandlers built;
  if (Status st = BuildHandlers(a.handle, **s, &built); !st.ok()) return Fail(st);
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  ro.stop = &g_stop;
  if (!a.no_progress && ::isatty(2)) {
    ro.progress = [](double done, uint64_t replayed) {
      const int width = 30, filled = static_cast<int>(done * width);
      std::string bar(static_cast<size_t>(filled), '#');
      bar.append(static_cast<size_t>(width - filled), '.');
      std::fprintf(stderr, "\rreplay [%s] %3.0f%%  %llu events replayed", bar.c_str(), done * 100,
                   static_cast<unsigned long long>(replayed));
      std::fflush(stderr);
    };
  }
  auto r = handlers::Replay(**s, built.registry, ro);
  if (ro.progress) std::fputc('\n', stderr);
  if (built.metrics) (void)built.metrics->Flush();
  if (built.counter) built.counter->Report();
  if (!r.ok()) return Fail(r.status());
  nlohmann::json per = nlohmann::json::array();
  for (const auto& h : r->handlers) {
    per.push_back({{"handler", h.handler}, {"succeeded", h.processed}, {"failed", h.parked},
                   {"failed_attempts", h.failed}, {"skipped", h.skipped}});
  }
  const double secs = r->elapsed_ns / 1e9;
  if (g.json) {
    nlohmann::json j{{"events_replayed", r->replayed}, {"events_scanned", r->scanned}, {"seconds", secs},
                     {"interrupted", r->interrupted}, {"handlers", per}};
    std::cout << j.dump() << "\n";
  } else {
    std::printf("replayed %llu event(s) of %llu scanned in %.2f s%s\n", static_cast<unsigned long long>(r->replayed),
                static_cast<unsigned long long>(r->scanned), secs, r->interrupted ? " (interrupted)" : "");
    for (const auto& h : r->handlers) {
      std::string line = "  " + h.handler + ": " + std::to_string(h.processed) + " succeeded, " +
                         std::to_string(h.parked) + " failed";
      if (h.parked) line += " (parked in $parked-replay." + h.handler + ")";
      if (h.skipped) line += ", " + std::to_string(h.skipped) + " skipped (at or before the handler's checkpoint)";
      std::printf("%s\n", line.c_str());
    }
  }
  return r->interrupted ? 130 : 0;
}

int ListSubscriptions(const GlobalOptions& g) {
  auto s = OpenStore(g, false);
  if (!s.ok()) return Fail(s.status());
  auto list = store::Subscription::List(**s);
  if (!list.ok()) return Fail(list.status());
  nlohmann::json arr = nlohmann::json::array();
  for (auto i : *list) {
    uint64_t parked = i.parked;
    int members = i.member_alive ? 1 : 0;
    if (i.group) {
      auto gi = store::GroupMember::Info(**s, i.name);
      if (gi.ok()) {
        members = gi->members;
        parked = gi->parked;
        i.cursor = gi->cursor;
      }
    }
    std::vector<std::string> types;
    for (uint32_t t : i.types) types.push_back(handlers::EventTypeName(t) ? handlers::EventTypeName(t) : std::to_string(t));
    uint64_t resolved = (*s)->ResolvedPosition();
    i.lag_bytes = resolved > i.cursor ? resolved - i.cursor : 0;
    nlohmann::json j{{"name", i.name},
                     {"cursor", i.cursor},
                     {"lag_bytes", i.lag_bytes},
                     {"delivered", i.delivered},
                     {"acked", i.acked},
                     {"kind", i.group ? "group" : "single"},
                     {"members", members},
                     {"member_pid", i.group ? 0 : i.member_pid},
                     {"parked", parked},
                     {"types", types},
                     {"stream_prefix", i.stream_prefix}};
    if (g.json) arr.push_back(j);
    else
      std::printf("%-24s %-6s cursor %-12llu lag %-10llu bytes  members %d  delivered %llu  acked %llu  parked %llu\n",
                  i.name.c_str(), i.group ? "group" : "single", static_cast<unsigned long long>(i.cursor),
                  static_cast<unsigned long long>(i.lag_bytes), members, static_cast<unsigned long long>(i.delivered),
                  static_cast<unsigned long long>(i.acked), static_cast<unsigned long long>(parked));
  }
  if (g.json) std::cout << arr.dump() << "\n";
  return 0;
}

int Parked(const GlobalOptions& g, const HandleArgs& a, bool replay) {
  auto codec = JsonCodec::Create();
  if (!codec.ok()) return Fail(codec.status());
  auto s = OpenStore(g, false);
  if (!s.ok()) return Fail(s.status());
  if (!replay) {
    std::string line;
    Status st = store::GroupMember::ReadParked(**s, GroupName(a), [&](const store::EventView& e) {
      line = (*codec)->Decode(e).dump() + "\n";
      return std::fwrite(line.data(), 1, line.size(), stdout) == line.size();
    });
    return st.ok() ? 0 : Fail(st);
  }
  // Replay through the print handler as a member of the group (the group must exist).
  auto m = store::GroupMember::Join(**s, GroupName(a), {});
  if (!m.ok()) return Fail(m.status());
  auto r = (*m)->ReplayParked([&](const store::EventView& e) {
    std::string line = (*codec)->Decode(e).dump() + "\n";
    std::fwrite(line.data(), 1, line.size(), stdout);
    return Status::Ok();
  });
  if (!r.ok()) return Fail(r.status());
  std::fprintf(stderr, "replayed %llu parked event(s): %llu handled, %llu parked again\n",
               static_cast<unsigned long long>(r->replayed), static_cast<unsigned long long>(r->succeeded),
               static_cast<unsigned long long>(r->reparked));
  return 0;
}

}  // namespace

void AddHandleVerbs(CLI::App& app, GlobalOptions& g, int& rc) {
  auto a = std::make_shared<HandleArgs>();
  auto* h = app.add_subcommand("handle", "attach a handler process to a durable subscription");
  h->add_option("--subscription", a->subscription, "subscription name (created on first use)")->required();
  h->add_option("--group", a->group, "join consumer group G of the subscription (several processes share it)");
  h->add_option("--types", a->types, "event types to receive, comma-separated (default: all)");
  h->add_option("--stream-prefix", a->prefix, "only streams whose name starts with this");
  h->add_option("--from", a->from, "where a new subscription starts: beginning, end, a position, an ISO 8601 time")
      ->capture_default_str();
  h->add_option("--wait", a->wait, "wait strategy when idle")->check(CLI::IsMember({"spin", "yield", "park"}))
      ->capture_default_str();
  h->add_option("--handler", a->handlers, "handlers, comma-separated: print, count, audit, notification, workflow, metrics, performance")
      ->capture_default_str();
  h->add_option("--out", a->out, "directory for handler outputs (audit.jsonl, metrics.prom)")->capture_default_str();
  h->add_option("--metrics-port", a->metrics_port, "serve GET /metrics on 127.0.0.1:PORT (metrics handler)");
  h->add_option("--notify-hook", a->notify_hook, "command given each notification and alert on stdin (notification handler)");
  h->add_option("--slow-ms", a->slow_ms, "events handled later than this after they occurred are slow operations")
      ->capture_default_str();
  h->add_option("--max-events", a->max_events, "exit after this many events (0: run until SIGINT/SIGTERM)");
  h->add_option("--idle-exit-ms", a->idle_exit_ms,
                "exit after this long without events (0: never); with --group, only once the whole group is caught up");
  h->add_option("--stats-file", a->stats_file, "keep per-handler stats (processed, failed, parked, latency) in this JSON file");
  h->callback([&g, &rc, a] { rc = Handle(g, *a); });
  app.add_subcommand("subscriptions", "list subscriptions: cursor, lag, members, delivered, acked, parked")
      ->callback([&g, &rc] { rc = ListSubscriptions(g); });
  auto ra = std::make_shared<ReplayArgs>();
  auto* r = app.add_subcommand("replay", "send the events of a time range (and types) through handlers, in log order");
  r->add_option("--from", ra->from, "ISO 8601 time of the first event (or: beginning)")->required();
  r->add_option("--to", ra->to, "ISO 8601 time of the last event (default: the end of the log)");
  r->add_option("--type", ra->types, "event types, comma-separated (default: all)");
  r->add_option("--handler", ra->handle.handlers, "handlers, comma-separated: print, count, audit, notification, workflow, metrics, performance")
      ->required();
  r->add_option("--out", ra->handle.out, "directory for handler outputs")->capture_default_str();
  r->add_option("--slow-ms", ra->handle.slow_ms, "performance handler: slow-operation threshold")->capture_default_str();
  r->add_flag("--no-progress", ra->no_progress, "no progress bar even on a terminal");
  r->callback([&g, &rc, ra] { rc = Replay(g, *ra); });
  auto pa = std::make_shared<HandleArgs>();
  auto replay = std::make_shared<bool>(false);
  auto* p = app.add_subcommand("parked", "list a consumer group's parked events (JSON lines), or replay them");
  p->add_option("--subscription", pa->subscription, "subscription name")->required();
  p->add_option("--group", pa->group, "consumer group")->required();
  p->add_flag("--replay", *replay, "send the parked events through the print handler again");
  p->callback([&g, &rc, pa, replay] { rc = Parked(g, *pa, *replay); });
}

}  // namespace hfe::tools
