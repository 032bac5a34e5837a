// simulate: producer processes drive Host Factory request lifecycles into the store concurrently, with
// exact expected versions, then the tool reports what was appended and the throughput.
//
// A lifecycle: RequestCreated -> RequestStatusChanged(pending -> in_progress) -> per machine, one atomic batch
// on the machine's stream (MachineCreated, MachineProvisioned, MachineStatusChanged pending -> running) ->
// RequestCompleted, or (fail rate) RequestFailed with the machines terminated.
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <map>
#include <random>

#include <nlohmann/json.hpp>

#include "handlers/envelope.h"
#include "ipc/clock.h"
#include "tools/cli_common.h"

namespace hfe::tools {
namespace {

namespace fb = flatbuffers;
using schema::EventBody;

struct SimArgs {
  int producers = 4;
  int requests = 2000;
  int max_machines = 3;
  double fail_rate = 0.1;
};

// Counters shared with the parent through an anonymous shared mapping.
struct ProducerReport {
  std::atomic<uint64_t> events;
  std::atomic<uint64_t> requests_completed;
  std::atomic<uint64_t> requests_failed;
  std::atomic<uint64_t> conflicts;
  std::atomic<int64_t> first_ns;
  std::atomic<int64_t> last_ns;
  std::array<std::atomic<uint64_t>, 64> by_type;
};

class Lifecycle {
 public:
  Lifecycle(store::EventStore& s, ProducerReport& rep, uint32_t seed) : store_(s), rep_(rep), rng_(seed) {}

  Status Run(const SimArgs& a) {
    std::string rid = "request-" + store::EventId::Random().ToString();
    std::string tpl = "template-" + std::to_string(rng_() % 5);
    int machines = 1 + static_cast<int>(rng_() % a.max_machines);
    store::EventId correlation = store::EventId::Random();

    auto& b = builders_[0];
    b.Clear();
    auto created = schema::CreateRequestCreatedEventDirect(b, rid.c_str(), schema::RequestType::Provision,
                                                          tpl.c_str(), machines, 600);
    HFE_RETURN_IF_ERROR(Append(rid, store::ExpectedVersion::NoStream(), 0, EventBody::RequestCreatedEvent,
                               created.Union(), correlation));
    b.Clear();
    auto started = schema::CreateRequestStatusChangedEventDirect(b, rid.c_str(), schema::RequestType::Provision,
                                                                "pending", "in_progress", "provisioning started");
    HFE_RETURN_IF_ERROR(Append(rid, store::ExpectedVersion::Exact(0), 0, EventBody::RequestStatusChangedEvent,
                               started.Union(), correlation));

    std::vector<std::string> machine_ids;
    for (int m = 0; m < machines; ++m) {
      std::string mid = "machine-" + store::EventId::Random().ToString();
      std::string iid = "i-" + std::to_string(rng_());
      machine_ids.push_back(mid);
      store::EventData evs[3];
      builders_[0].Clear();
      builders_[1].Clear();
      builders_[2].Clear();
      auto mc = schema::CreateMachineCreatedEventDirect(builders_[0], mid.c_str(), iid.c_str(), tpl.c_str(), rid.c_str(),
                                                       "m5.large", "zone-a", iid.c_str());
      Encode(0, mid, EventBody::MachineCreatedEvent, mc.Union(), correlation, &evs[0]);
      auto mp = schema::CreateMachineProvisionedEventDirect(builders_[1], mid.c_str(), iid.c_str(), "10.0.0.7", "",
                                                           clock::WallNanos());
      Encode(1, mid, EventBody::MachineProvisionedEvent, mp.Union(), correlation, &evs[1]);
      auto ms = schema::CreateMachineStatusChangedEventDirect(builders_[2], mid.c_str(), iid.c_str(), "pending",
                                                             "running", "provisioned", "healthy");
      Encode(2, mid, EventBody::MachineStatusChangedEvent, ms.Union(), correlation, &evs[2]);
      auto r = store_.Append(mid, store::ExpectedVersion::NoStream(), evs);
      if (!r.ok()) return r.status();
      Count(EventBody::MachineCreatedEvent);
      Count(EventBody::MachineProvisionedEvent);
      Count(EventBody::MachineStatusChangedEvent);
    }

    bool fail = std::uniform_real_distribution<double>(0, 1)(rng_) < a.fail_rate;
    b.Clear();
    if (fail) {
      auto failed = schema::CreateRequestFailedEventDirect(b, rid.c_str(), schema::RequestType::Provision,
                                                          "capacity unavailable", "InsufficientCapacity",
                                                          "provider could not place all machines");
      HFE_RETURN_IF_ERROR(Append(rid, store::ExpectedVersion::Exact(1), 0, EventBody::RequestFailedEvent,
                                 failed.Union(), correlation));
      rep_.requests_failed.fetch_add(1, std::memory_order_relaxed);
    } else {
      std::vector<fb::Offset<fb::String>> ids;
      for (const auto& m : machine_ids) ids.push_back(b.CreateString(m));
      auto done = schema::CreateRequestCompletedEvent(b, b.CreateString(rid), schema::RequestType::Provision,
                                                      b.CreateString("complete"), b.CreateVector(ids),
                                                      clock::WallNanos(), 1.5 * machines, b.CreateString(tpl), machines);
      HFE_RETURN_IF_ERROR(Append(rid, store::ExpectedVersion::Exact(1), 0, EventBody::RequestCompletedEvent,
                                 done.Union(), correlation));
      rep_.requests_completed.fetch_add(1, std::memory_order_relaxed);
    }
    return Status::Ok();
  }

 private:
  void Encode(int bi, const std::string& stream, EventBody type, fb::Offset<void> body, store::EventId corr,
              store::EventData* out) {
    handlers::EnvelopeMeta meta;
    const std::string stream_type = stream.substr(0, stream.find('-'));  // outlives the view in meta
    meta.event_id = store::EventId::Random();
    meta.stream_id = stream;
    meta.stream_type = stream_type;
    meta.correlation_id = corr;
    handlers::FinishEnvelope(builders_[bi], meta, type, body, out);
  }
  Status Append(const std::string& stream, store::ExpectedVersion ev, int bi, EventBody type, fb::Offset<void> body,
                store::EventId corr) {
    store::EventData d;
    Encode(bi, stream, type, body, corr, &d);
    auto r = store_.Append(stream, ev, {&d, 1});
    if (!r.ok()) return r.status();
    Count(type);
    return Status::Ok();
  }
  void Count(EventBody t) {
    rep_.events.fetch_add(1, std::memory_order_relaxed);
    rep_.by_type[static_cast<size_t>(t) % 64].fetch_add(1, std::memory_order_relaxed);
  }

  store::EventStore& store_;
  ProducerReport& rep_;
  std::mt19937_64 rng_;
  std::array<fb::FlatBufferBuilder, 3> builders_;
};

int Simulate(const GlobalOptions& g, const SimArgs& a) {
  if (a.producers < 1 || a.producers > 64 || a.requests < 1 || a.max_machines < 1) {
    return Fail("--producers must be 1..64, --requests and --max-machines at least 1");
  }
  {
    auto s = OpenStore(g, /*create=*/true);  // create (or recover) before the producers attach
    if (!s.ok()) return Fail(s.status());
  }
  size_t bytes = sizeof(ProducerReport) * static_cast<size_t>(a.producers);
  void* mem = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return Fail(ErrnoStatus("mmap", errno));
  auto* reports = new (mem) ProducerReport[a.producers]();
  std::fprintf(stderr, "simulate: %d producer processes x %d request lifecycles into %s\n", a.producers, a.requests,
               g.store.c_str());
  std::vector<pid_t> pids;
  for (int p = 0; p < a.producers; ++p) {
    pid_t pid = ::fork();
    if (pid == 0) {
      auto s = OpenStore(g, false);
      if (!s.ok()) _exit(Fail(s.status()));
      ProducerReport& rep = reports[p];
      Lifecycle lc(**s, rep, static_cast<uint32_t>(::getpid()));
      rep.first_ns = clock::MonotonicNanos();
      for (int i = 0; i < a.requests; ++i) {
        Status st = lc.Run(a);
        if (!st.ok()) _exit(Fail(st));
      }
      rep.last_ns = clock::MonotonicNanos();
      _exit(0);
    }
    pids.push_back(pid);
  }
  int failed = 0;
  for (pid_t pid : pids) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failed;
  }
  uint64_t events = 0, completed = 0, failed_requests = 0;
  int64_t first = INT64_MAX, last = 0;
  std::map<std::string, uint64_t> by_type;
  for (int p = 0; p < a.producers; ++p) {
    events += reports[p].events;
    completed += reports[p].requests_completed;
    failed_requests += reports[p].requests_failed;
    first = std::min<int64_t>(first, reports[p].first_ns);
    last = std::max<int64_t>(last, reports[p].last_ns);
    for (uint32_t t = 1; t <= handlers::EventTypeCount() && t < 64; ++t) {
      if (uint64_t n = reports[p].by_type[t]) by_type[handlers::EventTypeName(t)] += n;
    }
  }
  double secs = last > first ? static_cast<double>(last - first) / 1e9 : 0;
  auto s = OpenStore(g, false);
  if (!s.ok()) return Fail(s.status());
  store::StoreStats st = (*s)->Stats();
  if (g.json) {
    nlohmann::json j{{"producers", a.producers},       {"requests_completed", completed},
                     {"requests_failed", failed_requests}, {"events_appended", events},
                     {"seconds", secs},                {"events_per_s", secs > 0 ? events / secs : 0},
                     {"by_type", by_type},             {"store_events", st.events},
                     {"store_streams", st.streams},    {"failed_producers", failed}};
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("appended %llu events (%llu requests completed, %llu failed) from %d producer processes in %.3f s\n",
                static_cast<unsigned long long>(events), static_cast<unsigned long long>(completed),
                static_cast<unsigned long long>(failed_requests), a.producers, secs);
    std::printf("throughput: %.0f events/s with exact expected versions, dedup on, one append per call\n",
                secs > 0 ? events / secs : 0);
    for (const auto& [t, n] : by_type) std::printf("  %-28s %10llu\n", t.c_str(), static_cast<unsigned long long>(n));
    std::printf("store now: %llu events in %llu streams, %llu segment(s), tail at %llu\n",
                static_cast<unsigned long long>(st.events), static_cast<unsigned long long>(st.streams),
                static_cast<unsigned long long>(st.segments), static_cast<unsigned long long>(st.tail_position));
  }
  ::munmap(mem, bytes);
  if (failed) return Fail(std::to_string(failed) + " producer process(es) failed");
  return 0;
}

}  // namespace

void AddSimulateVerb(CLI::App& app, GlobalOptions& g, int& rc) {
  auto a = std::make_shared<SimArgs>();
  auto* s = app.add_subcommand("simulate", "producer processes append Host Factory request lifecycles concurrently");
  s->add_option("--producers", a->producers, "producer processes")->capture_default_str();
  s->add_option("--requests", a->requests, "request lifecycles per producer")->capture_default_str();
  s->add_option("--max-machines", a->max_machines, "machines per request, at most")->capture_default_str();
  s->add_option("--fail-rate", a->fail_rate, "share of requests that fail")->capture_default_str();
  s->callback([&g, &rc, a] { rc = Simulate(g, *a); });
}

}  // namespace hfe::tools
