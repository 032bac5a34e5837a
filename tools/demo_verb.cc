// demo: the whole Host Factory event pipeline on one host, with a live summary.
//   hostfactory --store S demo --out DIR [--producers N] [--requests R] [--rate Q] [--max-machines M]
//                              [--fail-rate F] [--min-delay-ms A] [--max-delay-ms B] [--metrics-port P]
//
// Processes: the provider (command handler, simulated cloud), a workflow handler process (subscription
// "workflow"), a handler process for audit, notification, metrics and performance (subscription "handlers"),
// the compactor (a snapshot every --compact-every events; the provider loads aggregates from it), and N
// producer processes that create requests at Q per second each. The workflow turns each created
// request into a StartProvisioning command; the provider provisions its machines after a random delay (some
// fail) and completes or fails the request; follow-up workflows confirm, clean up and mark machines ready.
// Every second a summary line: events/s, requests by outward status, how far each handler process is behind,
// handler latency percentiles. When every
// request has ended and every handler caught up, the handler processes are stopped and the outputs listed.
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <thread>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "handlers/aggregates/request.h"
#include "handlers/aggregates/template.h"
#include "handlers/envelope.h"
#include "handlers/workflow/command_bus.h"
#include "ipc/clock.h"
#include "store/subscription.h"
#include "tools/cli_common.h"

namespace hfe::tools {
namespace {

volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

struct DemoArgs {
  std::string out = "hfevents-out";
  int producers = 2;
  int requests = 500;     // per producer
  double rate = 1000;     // requests per second per producer (0: as fast as possible)
  int max_machines = 3;
  double fail_rate = 0.05;
  double min_delay_ms = 1, max_delay_ms = 20;
  int metrics_port = 0;
  int timeout_s = 300;
  uint64_t compact_every = 20'000;  // events between snapshots (0: no compactor)
};

// Child processes, stopped (SIGTERM, then SIGKILL) whatever way the demo ends.
class Children {
 public:
  ~Children() { StopAll(2000); }
  Result<pid_t> Spawn(const std::vector<std::string>& args) {
    pid_t pid = ::fork();
    if (pid < 0) return ErrnoStatus("fork", errno);
    if (pid == 0) {
      ::dup2(2, 1);  // a child's reports go to stderr: stdout is the demo's own (JSON with --json)
      std::vector<char*> argv;
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv("/proc/self/exe", argv.data());
      std::fprintf(stderr, "hostfactory: exec of %s failed: %s\n", args[0].c_str(), std::strerror(errno));
      _exit(127);
    }
    pids_.push_back(pid);
    return pid;
  }
  // Returns false when a child already exited (its exit code in *code).
  bool Alive(pid_t pid, int* code) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) != pid) return true;
    *code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::erase(pids_, pid);
    return false;
  }
  // SIGTERM, then SIGKILL after `grace_ms`; returns the number that did not exit cleanly.
  int StopAll(int64_t grace_ms) {
    for (pid_t p : pids_) ::kill(p, SIGTERM);
    int bad = 0;
    const int64_t deadline = clock::MonotonicNanos() + grace_ms * 1'000'000;
    for (pid_t p : pids_) {
      int status = 0;
      while (::waitpid(p, &status, WNOHANG) == 0) {
        if (clock::MonotonicNanos() > deadline) {
          ::kill(p, SIGKILL);
          ::waitpid(p, &status, 0);
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++bad;
    }
    pids_.clear();
    return bad;
  }

 private:
  std::vector<pid_t> pids_;
};

// What the log says so far: events by type, requests by status (folded from request events).
struct LogView {
  uint64_t next = 0;  // read from here next time
  uint64_t events = 0;
  std::map<std::string, uint64_t> by_type;
  std::unordered_map<std::string, std::string> request_status;  // request id -> status name
  std::map<std::string, uint64_t> StatusCounts() const {
    std::map<std::string, uint64_t> c;
    for (const auto& [id, s] : request_status) ++c[s];
    return c;
  }
  uint64_t Open() const {
    uint64_t n = 0;
    for (const auto& [id, s] : request_status) n += s == "pending" || s == "in_progress";
    return n;
  }
  Status CatchUp(const store::EventStore& s) {
    return s.ReadAll(next, [&](const store::EventView& v) {  // every event at or after `next`
      ++events;
      const char* name = handlers::EventTypeName(v.type);
      ++by_type[name ? name : "Unknown"];
      Fold(v);
      next = v.position + 1;
      return true;
    });
  }
  void Fold(const store::EventView& v) {
    using schema::EventBody;
    if (v.type < static_cast<uint32_t>(EventBody::RequestCreatedEvent) ||
        v.type > static_cast<uint32_t>(EventBody::RequestTimeoutEvent)) {
      return;
    }
    const schema::Envelope* e = handlers::VerifiedEnvelope(v.payload);
    if (!e) return;
    std::string& st = request_status[std::string(v.stream)];
    switch (e->body_type()) {
      case EventBody::RequestCreatedEvent: st = "pending"; break;
      case EventBody::RequestStatusChangedEvent: {
        auto* n = e->body_as_RequestStatusChangedEvent()->new_status();
        st = n ? n->str() : st;
        break;
      }
      case EventBody::RequestCompletedEvent: {
        auto* c = e->body_as_RequestCompletedEvent()->completion_status();
        st = c && c->string_view() == "partial" ? "partial" : "completed";
        break;
      }
      case EventBody::RequestFailedEvent: st = "failed"; break;
      case EventBody::RequestTimeoutEvent: st = "timeout"; break;
      default: break;
    }
  }
};

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  if (!in) return nullptr;
  return nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
}

std::string Micros(uint64_t ns) {
  char buf[32];
  if (ns < 10'000) std::snprintf(buf, sizeof buf, "%.1fus", ns / 1e3);
  else if (ns < 10'000'000) std::snprintf(buf, sizeof buf, "%.0fus", ns / 1e3);
  else std::snprintf(buf, sizeof buf, "%.0fms", ns / 1e6);
  return buf;
}

std::string HandlerLine(const nlohmann::json& stats) {
  std::string out;
  if (!stats.is_object() || !stats.contains("handlers")) return out;
  for (const auto& h : stats["handlers"]) {
    if (h.value("processed", 0ull) == 0) continue;
    out += " " + h.value("handler", std::string("?")) + " " + Micros(h.value("latency_p50_ns", 0ull)) + "/" +
           Micros(h.value("latency_p99_ns", 0ull));
    if (uint64_t parked = h.value("parked", 0ull)) out += " parked " + std::to_string(parked);
  }
  return out;
}

void ProducerMain(const GlobalOptions& g, const DemoArgs& a, int index) {
  auto s = OpenStore(g, false);
  if (!s.ok()) _exit(Fail(s.status()));
  std::mt19937_64 rng(static_cast<uint64_t>(::getpid()) * 0x9e3779b97f4a7c15ull);
  const int64_t start = clock::MonotonicNanos();
  for (int i = 0; i < a.requests && !g_stop; ++i) {
    if (a.rate > 0) {
      const int64_t due = start + static_cast<int64_t>(i * 1e9 / a.rate);
      const int64_t now = clock::MonotonicNanos();
      if (due > now) std::this_thread::sleep_for(std::chrono::nanoseconds(due - now));
    }
    const std::string id = "request-" + store::EventId::Random().ToString();
    const std::string tpl = "template-" + std::to_string(rng() % 5);
    const int machines = 1 + static_cast<int>(rng() % static_cast<uint64_t>(a.max_machines));
    auto r = handlers::aggregates::Request::Create(id, tpl, machines, schema::RequestType::Provision, 600,
                                                   {{"producer", std::to_string(index)}});
    if (!r.ok()) _exit(Fail(r.status()));
    if (Status st = r->Save(**s); !st.ok()) _exit(Fail(st));
  }
  _exit(0);
}

// The templates requests refer to: created and validated once per store.
Status EnsureTemplates(store::EventStore& s) {
  for (int t = 0; t < 5; ++t) {
    const std::string id = "template-" + std::to_string(t);
    if (s.GetStream(id).exists) continue;
    handlers::aggregates::TemplateSpec spec;
    spec.name = "demo template " + std::to_string(t);
    spec.instance_type = t % 2 ? "m5.xlarge" : "m5.large";
    spec.image_id = "ami-" + std::to_string(1000 + t);
    spec.max_count = 100;
    spec.provider_api = "simulated";
    auto tpl = handlers::aggregates::Template::Create(id, spec);
    if (!tpl.ok()) return tpl.status();
    HFE_RETURN_IF_ERROR(tpl->Validate("valid", {{"checked_by", "demo"}}));
    Status st = tpl->Save(s);
    if (!st.ok() && st.code() != StatusCode::kWrongExpectedVersion) return st;
  }
  return Status::Ok();
}

int Demo(const GlobalOptions& g, const DemoArgs& a) {
  if (a.producers < 1 || a.producers > 32 || a.requests < 1 || a.max_machines < 1 || a.rate < 0) {
    return Fail("--producers must be 1..32, --requests and --max-machines at least 1, --rate at least 0");
  }
  // Handler outputs carry checkpoints (log positions) of the store they were written from; a new store
  // must not meet the outputs of an old one.
  std::error_code ec;
  const bool new_store = !std::filesystem::exists(g.store + "/control.hfe", ec);
  for (const char* f : {"audit.jsonl", "notifications.jsonl", "alerts.jsonl", "metrics.prom"}) {
    if (new_store && std::filesystem::exists(a.out + "/" + f, ec)) {
      return Fail("--out '" + a.out + "' holds " + f + " from another store, and '" + g.store +
                  "' is new; choose an empty --out directory or remove those files");
    }
  }
  std::filesystem::create_directories(a.out, ec);
  if (ec) return Fail("cannot create --out '" + a.out + "': " + ec.message());
  auto s = OpenStore(g, /*create=*/true);
  if (!s.ok()) return Fail(s.status());
  if (Status st = EnsureTemplates(**s); !st.ok()) return Fail(st);
  const std::string out = std::filesystem::absolute(a.out).string();
  auto fmt = [](double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", v);
    return std::string(b);
  };
  const std::vector<std::string> base{"hostfactory", "--store", g.store};
  auto args = [&](std::vector<std::string> extra) {
    std::vector<std::string> v = base;
    v.insert(v.end(), extra.begin(), extra.end());
    return v;
  };
  Children kids;
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  std::vector<std::string> handler_args{"handle", "--subscription", "handlers", "--handler",
                                        "audit,notification,metrics,performance", "--out", out, "--stats-file",
                                        out + "/handlers-stats.json"};
  if (a.metrics_port) {
    handler_args.push_back("--metrics-port");
    handler_args.push_back(std::to_string(a.metrics_port));
  }
  std::vector<std::vector<std::string>> services{
      args({"provider", "--fail-rate", fmt(a.fail_rate), "--min-delay-ms", fmt(a.min_delay_ms), "--max-delay-ms",
            fmt(a.max_delay_ms), "--stats-file", out + "/provider-stats.json"}),
      args({"handle", "--subscription", "workflow", "--handler", "workflow", "--stats-file", out + "/workflow-stats.json"}),
      args(handler_args)};
  if (a.compact_every > 0) {
    services.push_back(args({"compact", "--watch", "--every-events", std::to_string(a.compact_every), "--every-seconds",
                             "5"}));
  }
  std::vector<pid_t> service_pids;
  for (const auto& v : services) {
    auto pid = kids.Spawn(v);
    if (!pid.ok()) return Fail(pid.status());
    service_pids.push_back(*pid);
  }
  // Producers start once the provider serves the bus and both handler subscriptions exist (at most 10 s).
  for (int waited = 0; waited < 1000; ++waited) {
    auto bus = handlers::InspectCommandBus((*s)->dir());
    auto subs = store::Subscription::List(**s);
    size_t ours = 0;
    if (subs.ok()) {
      for (const auto& i : *subs) ours += i.name == "workflow" || i.name == "handlers";
    }
    if (bus.ok() && bus->receiver_pid != 0 && ours == 2) break;
    for (pid_t pid : service_pids) {
      int code = 0;
      if (!kids.Alive(pid, &code)) return Fail("a pipeline process (pid " + std::to_string(pid) + ") exited with " +
                                               std::to_string(code) + " while starting; see its message above");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::fprintf(stderr, "demo: provider, workflow and handler processes started; %d producer processes x %d requests "
               "at %s/s each into %s\n", a.producers, a.requests, a.rate > 0 ? fmt(a.rate).c_str() : "max",
               g.store.c_str());
  std::vector<pid_t> producers;
  for (int p = 0; p < a.producers; ++p) {
    pid_t pid = ::fork();
    if (pid == 0) ProducerMain(g, a, p);
    if (pid < 0) return Fail(ErrnoStatus("fork", errno));
    producers.push_back(pid);
  }
  LogView log;
  const int64_t t0 = clock::MonotonicNanos();
  int64_t last_line = t0;
  uint64_t last_events = 0, last_resolved = UINT64_MAX;
  int quiet_ticks = 0, failed_producers = 0;
  bool done = false;
  const uint64_t expected_requests = static_cast<uint64_t>(a.producers) * static_cast<uint64_t>(a.requests);
  while (!g_stop && !done) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    for (auto it = producers.begin(); it != producers.end();) {
      int status = 0;
      if (::waitpid(*it, &status, WNOHANG) == *it) {
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failed_producers;
        it = producers.erase(it);
      } else {
        ++it;
      }
    }
    for (pid_t pid : service_pids) {
      int code = 0;
      if (!kids.Alive(pid, &code)) return Fail("a pipeline process (pid " + std::to_string(pid) + ") exited with " +
                                               std::to_string(code) + "; see its message above");
    }
    if (Status st = log.CatchUp(**s); !st.ok()) return Fail(st);
    const int64_t now = clock::MonotonicNanos();
    if (now - last_line >= 1'000'000'000) {
      const double secs = (now - last_line) / 1e9;
      auto counts = log.StatusCounts();
      uint64_t running = counts["pending"] + counts["in_progress"];
      uint64_t complete = counts["completed"];
      uint64_t with_error = counts["partial"] + counts["failed"] + counts["timeout"] + counts["cancelled"];
      std::string lag;  // how far each handler process is behind the log (unacknowledged bytes)
      if (auto subs = store::Subscription::List(**s); subs.ok()) {
        const uint64_t end = (*s)->ResolvedPosition();
        for (const auto& i : *subs) {
          if (i.name != "workflow" && i.name != "handlers") continue;
          char b[64];
          std::snprintf(b, sizeof b, " %s %.1f MiB", i.name.c_str(), (end > i.cursor ? end - i.cursor : 0) / 1048576.0);
          lag += b;
        }
      }
      std::printf("[%5.1fs] %9llu events %8.0f/s | requests running %llu complete %llu complete_with_error %llu |"
                  " lag%s | p50/p99:%s%s\n",
                  (now - t0) / 1e9, static_cast<unsigned long long>(log.events), (log.events - last_events) / secs,
                  static_cast<unsigned long long>(running), static_cast<unsigned long long>(complete),
                  static_cast<unsigned long long>(with_error), lag.c_str(),
                  HandlerLine(ReadJson(out + "/handlers-stats.json")).c_str(),
                  HandlerLine(ReadJson(out + "/workflow-stats.json")).c_str());
      std::fflush(stdout);
      last_line = now;
      last_events = log.events;
    }
    // Settled: producers done, every request ended, nothing new in the log, the bus empty, every handler
    // subscription acknowledged through the end of the log.
    const uint64_t resolved = (*s)->ResolvedPosition();
    quiet_ticks = resolved == last_resolved ? quiet_ticks + 1 : 0;
    last_resolved = resolved;
    auto bus = handlers::InspectCommandBus((*s)->dir());
    if (!bus.ok()) return Fail(bus.status());
    auto subs = store::Subscription::List(**s);
    if (!subs.ok()) return Fail(subs.status());
    uint64_t behind = 0;
    for (const auto& i : *subs) {
      if ((i.name == "workflow" || i.name == "handlers") && i.cursor < resolved) behind += resolved - i.cursor;
    }
    done = producers.empty() && log.request_status.size() >= expected_requests && log.Open() == 0 &&
           quiet_ticks >= 3 && bus->pending == 0 && behind == 0;
    if (!done && now - t0 > static_cast<int64_t>(a.timeout_s) * 1'000'000'000) {
      return Fail("the pipeline did not settle within --timeout-s " + std::to_string(a.timeout_s) + " s: " +
                  std::to_string(producers.size()) + " producer(s) running, " +
                  std::to_string(log.request_status.size()) + " of " + std::to_string(expected_requests) +
                  " requests created, " + std::to_string(log.Open()) + " open, " + std::to_string(bus->pending) +
                  " command(s) on the bus, handlers " + std::to_string(behind) + " bytes behind (see " + out +
                  "/*-stats.json)");
    }
  }
  if (g_stop) {
    kids.StopAll(3000);
    return Fail("interrupted; the store and outputs are as far as the pipeline got");
  }
  const double secs = (clock::MonotonicNanos() - t0) / 1e9;
  const int bad = kids.StopAll(10'000);
  auto counts = log.StatusCounts();
  nlohmann::json handlers_stats = ReadJson(out + "/handlers-stats.json");
  nlohmann::json workflow_stats = ReadJson(out + "/workflow-stats.json");
  nlohmann::json provider_stats = ReadJson(out + "/provider-stats.json");
  auto lines = [](const std::string& path) {
    std::ifstream in(path);
    uint64_t n = 0;
    for (std::string l; std::getline(in, l);) ++n;
    return n;
  };
  if (g.json) {
    nlohmann::json j{{"seconds", secs},
                     {"events", log.events},
                     {"events_per_s", log.events / secs},
                     {"requests", counts},
                     {"by_type", log.by_type},
                     {"handlers", handlers_stats},
                     {"workflow", workflow_stats},
                     {"provider", provider_stats},
                     {"outputs", {{"audit", out + "/audit.jsonl"}, {"notifications", out + "/notifications.jsonl"},
                                  {"alerts", out + "/alerts.jsonl"}, {"metrics", out + "/metrics.prom"}}}};
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("\nsettled after %.1f s: %llu events (%.0f/s over the run)\n", secs,
                static_cast<unsigned long long>(log.events), log.events / secs);
    std::printf("requests:");
    for (const auto& [st, n] : counts) std::printf(" %s %llu", st.c_str(), static_cast<unsigned long long>(n));
    std::printf("\n");
    for (const auto* stats : {&handlers_stats, &workflow_stats}) {
      if (!stats->is_object()) continue;
      for (const auto& h : (*stats)["handlers"]) {
        std::printf("  %-18s processed %8llu  failed %llu  parked %llu  latency p50 %s p99 %s max %s\n",
                    h.value("handler", std::string("?")).c_str(), h.value("processed", 0ull), h.value("failed", 0ull),
                    h.value("parked", 0ull), Micros(h.value("latency_p50_ns", 0ull)).c_str(),
                    Micros(h.value("latency_p99_ns", 0ull)).c_str(), Micros(h.value("latency_max_ns", 0ull)).c_str());
      }
    }
    if (provider_stats.is_object()) {
      std::printf("  provider: machines provisioned %llu failed %llu terminated %llu, health checks %llu, "
                  "cleanups %llu, commands rejected %llu\n",
                  provider_stats["machines"].value("provisioned", 0ull), provider_stats["machines"].value("failed", 0ull),
                  provider_stats["machines"].value("terminated", 0ull), provider_stats.value("health_checks", 0ull),
                  provider_stats.value("resources_cleaned", 0ull), provider_stats.value("rejected", 0ull));
    }
    std::printf("outputs in %s:\n", out.c_str());
    for (const char* f : {"audit.jsonl", "notifications.jsonl", "alerts.jsonl"}) {
      std::printf("  %-20s %llu lines\n", f, static_cast<unsigned long long>(lines(out + "/" + f)));
    }
    std::printf("  %-20s Prometheus text%s\n", "metrics.prom",
                a.metrics_port ? (", also at http://127.0.0.1:" + std::to_string(a.metrics_port) + "/metrics while running").c_str() : "");
  }
  if (failed_producers) return Fail(std::to_string(failed_producers) + " producer process(es) failed");
  if (bad) return Fail(std::to_string(bad) + " pipeline process(es) did not stop cleanly");
  return 0;
}

}  // namespace

void AddDemoVerb(CLI::App& app, GlobalOptions& g, int& rc) {
  auto a = std::make_shared<DemoArgs>();
  auto* d = app.add_subcommand("demo", "run the whole pipeline: producers, workflow, simulated provider, handlers, live summary");
  d->add_option("--out", a->out, "directory for audit.jsonl, notifications.jsonl, alerts.jsonl, metrics.prom")
      ->capture_default_str();
  d->add_option("--producers", a->producers, "producer processes")->capture_default_str();
  d->add_option("--requests", a->requests, "requests per producer")->capture_default_str();
  d->add_option("--rate", a->rate, "requests per second per producer (0: as fast as possible)")->capture_default_str();
  d->add_option("--max-machines", a->max_machines, "machines per request, at most")->capture_default_str();
  d->add_option("--fail-rate", a->fail_rate, "share of machines the provider fails to provision")->capture_default_str();
  d->add_option("--min-delay-ms", a->min_delay_ms, "shortest provisioning delay")->capture_default_str();
  d->add_option("--max-delay-ms", a->max_delay_ms, "longest provisioning delay")->capture_default_str();
  d->add_option("--metrics-port", a->metrics_port, "serve GET /metrics on 127.0.0.1:PORT while running");
  d->add_option("--timeout-s", a->timeout_s, "give up when the pipeline has not settled by then")->capture_default_str();
  d->add_option("--compact-every", a->compact_every, "run a compactor: a snapshot every N events (0: none)")
      ->capture_default_str();
  d->callback([&g, &rc, a] { rc = Demo(g, *a); });
}

}  // namespace hfe::tools
