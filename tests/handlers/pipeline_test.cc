// The pipeline across processes: producers (this test), the provider, a workflow handler process and a
// handler process for audit, notification, metrics and performance, all `hostfactory` processes attached to
// one store. Every pipeline process is SIGKILLed once mid-run and restarted; the outputs must still be exact.
// And a handler that throws on every event has its events parked while the others finish.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>
#include <stdexcept>
#include <thread>

#include "handlers/aggregates/request.h"
#include "handlers/audit/audit_handler.h"
#include "handlers/envelope.h"
#include "handlers/host.h"
#include "handlers/monitoring/metrics_handler.h"
#include "ipc/clock.h"
#include "store/subscription.h"
#include "tests/handlers/handler_testutil.h"
#include "tests/store/store_testutil.h"

namespace hfe::handlers {
namespace {

using aggregates::Request;
using aggregates::RequestStatus;
using testing::ReadLines;

store::StoreOptions PipelineStore() {
  store::StoreOptions o;
  o.create_if_missing = true;
  o.segment_size = 1 << 20;
  o.stream_capacity = 1 << 14;
  o.dedup_window = 1 << 16;
  return o;
}

// Starts `hostfactory --store S <args>` with its output in `log`.
pid_t StartCli(hfe::testing::Children& kids, const std::string& store, const std::vector<std::string>& args,
               const std::string& log) {
  return kids.Spawn([&] {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    std::vector<std::string> all{HFE_CLI_PATH, "--store", store};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(HFE_CLI_PATH, argv.data());
    return 127;
  });
}

// Counts of each event type in the log, and how many requests are completed.
std::map<std::string, uint64_t> CountByType(const store::EventStore& s) {
  std::map<std::string, uint64_t> by_type;
  EXPECT_TRUE(s.ReadAll(0, [&](const store::EventView& v) {
    ++by_type[EventTypeName(v.type) ? EventTypeName(v.type) : "?"];
    return true;
  }).ok());
  return by_type;
}

// Sums every sample of a metric in a Prometheus text file, by its event_type label when it has one.
std::map<std::string, double> Metric(const std::string& path, const std::string& name) {
  std::map<std::string, double> out;
  std::ifstream in(path);
  for (std::string l; std::getline(in, l);) {
    if (l.compare(0, name.size(), name) != 0 || l.size() <= name.size()) continue;
    const char next = l[name.size()];
    if (next != '{' && next != ' ') continue;  // another metric whose name starts the same
    std::string key;
    const std::string label = "event_type=\"";
    if (auto at = l.find(label); next == '{' && at != std::string::npos) {
      at += label.size();
      key = l.substr(at, l.find('"', at) - at);
    }
    out[key] += std::stod(l.substr(l.rfind(' ') + 1));
  }
  return out;
}

class PipelineTest : public ::testing::Test {
 protected:
  hfe::testing::TempDir dir_;
};

TEST_F(PipelineTest, LifecyclesCompleteOnceEachThroughKillsAndRestarts) {
  constexpr int kRequests = 300;
  const std::string store_dir = dir_.Sub("store"), out = dir_.Sub("out");
  auto s = store::EventStore::Open(store_dir, PipelineStore());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  hfe::testing::Children kids;
  const std::vector<std::string> provider{"provider", "--fail-rate", "0", "--min-delay-ms", "0.1", "--max-delay-ms", "2"};
  const std::vector<std::string> workflow{"handle", "--subscription", "workflow", "--handler", "workflow"};
  const std::vector<std::string> handlers{"handle", "--subscription", "handlers", "--handler",
                                          "audit,notification,metrics,performance", "--out", out};
  const std::string log = dir_.Sub("processes.log");
  pid_t provider_pid = StartCli(kids, store_dir, provider, log);
  pid_t workflow_pid = StartCli(kids, store_dir, workflow, log);
  pid_t handlers_pid = StartCli(kids, store_dir, handlers, log);

  // Produce; SIGKILL each pipeline process once, at fixed points of the run, and start it again.
  std::vector<std::string> ids;
  for (int i = 0; i < kRequests; ++i) {
    ids.push_back("request-" + store::EventId::Random().ToString());
    auto r = Request::Create(ids.back(), "template-" + std::to_string(i % 3), 1 + i % 2);
    ASSERT_TRUE(r.ok());
    ASSERT_TRUE(r->Save(**s).ok());
    ::usleep(500);
    if (i == kRequests / 4) {
      kids.Kill(handlers_pid);
      kids.Wait(handlers_pid);
      handlers_pid = StartCli(kids, store_dir, handlers, log);
    } else if (i == kRequests / 2) {
      kids.Kill(provider_pid);
      kids.Wait(provider_pid);
      provider_pid = StartCli(kids, store_dir, provider, log);
    } else if (i == 3 * kRequests / 4) {
      kids.Kill(workflow_pid);
      kids.Wait(workflow_pid);
      workflow_pid = StartCli(kids, store_dir, workflow, log);
    }
  }

  // Wait until every request completed and both subscriptions acknowledged the whole log, quietly.
  const int64_t deadline = clock::MonotonicNanos() + 120'000'000'000;
  int completed = 0, quiet = 0;
  uint64_t last = 0;
  while (clock::MonotonicNanos() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    completed = 0;
    for (const auto& id : ids) {
      auto r = Request::Load(**s, id);
      completed += r.ok() && r->status() == RequestStatus::kCompleted;
    }
    const uint64_t resolved = (*s)->ResolvedPosition();
    auto subs = store::Subscription::List(**s);
    ASSERT_TRUE(subs.ok());
    bool caught_up = subs->size() == 2;
    for (const auto& i : *subs) caught_up = caught_up && i.cursor >= resolved;
    quiet = resolved == last ? quiet + 1 : 0;
    last = resolved;
    if (completed == kRequests && caught_up && quiet >= 10) break;
  }
  ASSERT_EQ(kRequests, completed) << "see " << log;
  for (pid_t p : {provider_pid, workflow_pid, handlers_pid}) ::kill(p, SIGTERM);
  for (pid_t p : {provider_pid, workflow_pid, handlers_pid}) EXPECT_EQ(0, kids.Wait(p)) << "see " << log;

  const auto in_log = CountByType(**s);
  uint64_t total = 0;
  for (const auto& [t, n] : in_log) total += n;
  // Audit: every event once, and exactly N completed requests.
  auto audit = ReadLines(out + "/audit.jsonl");
  std::set<std::string> event_ids;
  uint64_t completed_entries = 0;
  for (const auto& l : audit) {
    event_ids.insert(l["event_id"].get<std::string>());
    completed_entries += l["event_type"] == "REQUEST_COMPLETED";
  }
  EXPECT_EQ(static_cast<uint64_t>(kRequests), completed_entries);
  EXPECT_EQ(total, audit.size());
  EXPECT_EQ(audit.size(), event_ids.size()) << "duplicate audit entries";
  // Metrics: counters equal the counts read from the log.
  const std::string prom = out + "/metrics.prom";
  auto by_type = Metric(prom, "domain_events_total");
  for (const auto& [t, n] : in_log) EXPECT_EQ(static_cast<double>(n), by_type[t]) << t;
  EXPECT_EQ(in_log.size(), by_type.size());
  EXPECT_EQ(kRequests, Metric(prom, "requests_created_total")[""]);
  EXPECT_EQ(kRequests, Metric(prom, "requests_completed_total")[""]);
  // Notifications: one per completed request, none twice.
  auto notes = ReadLines(out + "/notifications.jsonl");
  EXPECT_EQ(static_cast<size_t>(kRequests), notes.size());
  // The whole lifecycle ran: every machine was reported ready and every request confirmed.
  EXPECT_EQ(in_log.at("MachineCreatedEvent"), in_log.at("MachineHealthCheckEvent"));
  EXPECT_EQ(static_cast<uint64_t>(kRequests), in_log.at("ProviderOperationExecutedEvent"));
}

// Throws on every event.
class Thrower : public Handler {
 public:
  std::string_view name() const override { return "thrower"; }
  Status Handle(const Event&) override { throw std::runtime_error("thrower always fails"); }
};

TEST_F(PipelineTest, ThrowingHandlerIsParkedWhileTheOthersFinish) {
  constexpr int kRequests = 100;
  const std::string store_dir = dir_.Sub("store"), out = dir_.Sub("out");
  {
    auto s = store::EventStore::Open(store_dir, PipelineStore());
    ASSERT_TRUE(s.ok());
    for (int i = 0; i < kRequests; ++i) {
      auto r = Request::Create("request-" + std::to_string(i), "template-1", 1);
      ASSERT_TRUE(r->StartProvisioning().ok());
      ASSERT_TRUE(r->Save(**s).ok());
    }
  }
  ASSERT_EQ(0, ::mkdir(out.c_str(), 0700));
  hfe::testing::Children kids;
  pid_t child = kids.Spawn([&]() -> int {
    auto s = store::EventStore::Open(store_dir, {});
    if (!s.ok()) return 1;
    Registry r;
    auto audit = AuditHandler::Open({out + "/audit.jsonl"});
    auto metrics = MetricsHandler::Open({out + "/metrics.prom", 0, 100});
    if (!audit.ok() || !metrics.ok()) return 2;
    r.RegisterAll(*audit);
    r.RegisterAll(std::make_shared<Thrower>());
    r.RegisterAll(*metrics);
    HostOptions o;
    o.subscription = "mixed";
    o.idle_exit_ms = 300;
    o.dispatch.retry_budget = 2;
    o.dispatch.backoff_initial_us = 10;
    o.stats_path = out + "/stats.json";
    auto host = HandlerHost::Open(**s, r, o);
    if (!host.ok()) return 3;
    volatile std::sig_atomic_t stop = 0;
    return (*host)->Run(&stop).ok() ? 0 : 4;
  });
  ASSERT_EQ(0, kids.Wait(child));

  auto s = store::EventStore::Open(store_dir, {});
  ASSERT_TRUE(s.ok());
  const uint64_t events = 2 * kRequests;
  EXPECT_EQ(events, ReadLines(out + "/audit.jsonl").size());
  EXPECT_EQ(static_cast<double>(kRequests), Metric(out + "/metrics.prom", "domain_events_total")["RequestCreatedEvent"]);
  EXPECT_EQ(events, (*s)->GetStream("$parked-mixed.thrower").next_version);
  EXPECT_FALSE((*s)->GetStream("$parked-mixed.audit").exists);
  auto stats = ReadLines(out + "/stats.json");
  ASSERT_EQ(1u, stats.size());
  for (const auto& h : stats[0]["handlers"]) {
    if (h["handler"] == "thrower") {
      EXPECT_EQ(events, h["parked"].get<uint64_t>());
      EXPECT_EQ(2 * events, h["failed"].get<uint64_t>());
      EXPECT_EQ(0u, h["processed"].get<uint64_t>());
    } else {
      EXPECT_EQ(events, h["processed"].get<uint64_t>()) << h["handler"];
      EXPECT_EQ(0u, h["parked"].get<uint64_t>()) << h["handler"];
    }
  }
  // The subscription went past every event: nothing is redelivered to a new run.
  auto subs = store::Subscription::List(**s);
  ASSERT_TRUE(subs.ok());
  ASSERT_EQ(1u, subs->size());
  EXPECT_EQ(events, (*subs)[0].acked);
}

}  // namespace
}  // namespace hfe::handlers
