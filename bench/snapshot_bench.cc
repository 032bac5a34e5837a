// Snapshot, rebuild and replay figures on a large log, each beside its baseline in the same run:
//   - rebuild of the domain state from the newest snapshot + tail versus from position 0;
//   - snapshot write time (serialise + write + sync) for the whole state;
//   - replay from the log with a header filter (events/s) beside an unfiltered scan of the same log;
//   - producer append rate with a compactor process running (`compact --watch` defaults: a snapshot every
//     1,000,000 events) versus alone, interleaved over several rounds, in 2 s windows.
// Usage: snapshot_bench [--events N] [--rounds R] [--out FILE.json]   (default 10,000,000 events, 3 rounds)
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "handlers/envelope.h"
#include "handlers/snapshot/compactor.h"
#include "handlers/snapshot/domain_state.h"
#include "ipc/clock.h"
#include "store/event_store.h"

namespace {

using namespace hfe;
namespace fb = flatbuffers;

double Seconds(int64_t ns) { return static_cast<double>(ns) / 1e9; }

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Appends request lifecycles: per request 3 request events, per machine (1-2) 3 machine events, and a
// resource event every 8th request. Returns events appended.
class Producer {
 public:
  explicit Producer(store::EventStore& s, uint64_t seed) : s_(s), seed_(seed) {}

  uint64_t Run(uint64_t events, int64_t deadline_ns = INT64_MAX) {
    uint64_t n = 0;
    while (n < events && clock::MonotonicNanos() < deadline_ns) n += Lifecycle();
    return n;
  }

 private:
  uint64_t Lifecycle() {
    char rid[48], mid[56];
    const uint64_t k = next_++;
    std::snprintf(rid, sizeof rid, "request-%016llx-%08llx", static_cast<unsigned long long>(seed_),
                  static_cast<unsigned long long>(k));
    uint64_t n = 0;
    b_.Clear();
    Put(rid, "request", schema::EventBody::RequestCreatedEvent,
        schema::CreateRequestCreatedEventDirect(b_, rid, schema::RequestType::Provision, "template-1", 2, 600).Union(),
        store::ExpectedVersion::NoStream());
    b_.Clear();
    Put(rid, "request", schema::EventBody::RequestStatusChangedEvent,
        schema::CreateRequestStatusChangedEventDirect(b_, rid, schema::RequestType::Provision, "pending", "in_progress", "started").Union(),
        store::ExpectedVersion::Exact(0));
    n += 2;
    const int machines = 1 + static_cast<int>(k % 2);
    std::vector<fb::Offset<fb::String>> ids;
    for (int m = 0; m < machines; ++m) {
      std::snprintf(mid, sizeof mid, "machine-%016llx-%08llx-%d", static_cast<unsigned long long>(seed_),
                    static_cast<unsigned long long>(k), m);
      b_.Clear();
      Put(mid, "machine", schema::EventBody::MachineCreatedEvent,
          schema::CreateMachineCreatedEventDirect(b_, mid, "", "template-1", rid, "m5.large", "zone-a", "").Union(),
          store::ExpectedVersion::NoStream());
      b_.Clear();
      Put(mid, "machine", schema::EventBody::MachineProvisionedEvent,
          schema::CreateMachineProvisionedEventDirect(b_, mid, "i-1", "10.0.0.1", "", 1).Union(), store::ExpectedVersion::Exact(0));
      b_.Clear();
      Put(mid, "machine", schema::EventBody::MachineStatusChangedEvent,
          schema::CreateMachineStatusChangedEventDirect(b_, mid, "i-1", "pending", "running", "provisioned", "").Union(),
          store::ExpectedVersion::Exact(1));
      n += 3;
    }
    b_.Clear();
    std::vector<fb::Offset<fb::String>> mids;
    for (int m = 0; m < machines; ++m) {
      std::snprintf(mid, sizeof mid, "machine-%016llx-%08llx-%d", static_cast<unsigned long long>(seed_),
                    static_cast<unsigned long long>(k), m);
      mids.push_back(b_.CreateString(mid));
    }
    Put(rid, "request", schema::EventBody::RequestCompletedEvent,
        schema::CreateRequestCompletedEvent(b_, b_.CreateString(rid), schema::RequestType::Provision,
                                            b_.CreateString("complete"), b_.CreateVector(mids), 1, 0.5,
                                            b_.CreateString("template-1"), machines).Union(),
        store::ExpectedVersion::Exact(1));
    ++n;
    if (k % 8 == 0) {
      b_.Clear();
      Put("resource-pool", "resource", schema::EventBody::ResourceCreatedEvent,
          schema::CreateResourceCreatedEventDirect(b_, "sim", "local", "instance", rid).Union(), store::ExpectedVersion::Any());
      ++n;
    }
    return n;
  }

  void Put(const char* stream, const char* type_name, schema::EventBody type, fb::Offset<void> body,
           store::ExpectedVersion ev) {
    handlers::EnvelopeMeta meta;
    meta.event_id = store::EventId::Random();
    meta.stream_id = stream;
    meta.stream_type = type_name;
    store::EventData d;
    handlers::FinishEnvelope(b_, meta, type, body, &d);
    auto r = s_.Append(stream, ev, {&d, 1});
    if (!r.ok()) {
      std::fprintf(stderr, "snapshot_bench: append failed: %s\n", r.status().ToString().c_str());
      std::exit(1);
    }
  }

  store::EventStore& s_;
  uint64_t seed_;
  uint64_t next_ = 0;
  fb::FlatBufferBuilder b_{1024};
};

}  // namespace

int main(int argc, char** argv) {
  uint64_t events = 10'000'000;
  int rounds = 3;
  std::string out;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--events" && i + 1 < argc) events = std::stoull(argv[++i]);
    else if (a == "--rounds" && i + 1 < argc) rounds = std::stoi(argv[++i]);
    else if (a == "--out" && i + 1 < argc) out = argv[++i];
    else {
      std::fprintf(stderr, "usage: snapshot_bench [--events N] [--rounds R] [--out FILE.json]\n");
      return 2;
    }
  }
  char tmpl[] = "/dev/shm/hfe-snapbench-XXXXXX";
  const std::string dir = std::string(::mkdtemp(tmpl)) + "/s";
  store::StoreOptions o;
  o.create_if_missing = true;
  o.segment_size = 256ull << 20;
  o.stream_capacity = 1u << 23;
  o.dedup_window = 1u << 20;
  auto s = store::EventStore::Open(dir, o);
  if (!s.ok()) {
    std::fprintf(stderr, "snapshot_bench: %s\n", s.status().ToString().c_str());
    return 1;
  }
  nlohmann::json j{{"events", events}};

  // 1. The log: 90% of it, a snapshot, then the last 10%.
  std::fprintf(stderr, "appending %llu events...\n", static_cast<unsigned long long>(events));
  Producer p(**s, 1);
  int64_t t = clock::MonotonicNanos();
  uint64_t appended = p.Run(events * 9 / 10);
  auto c = handlers::Compactor::Open(**s, {});
  if (!c.ok()) return 1;
  auto first = (*c)->CompactOnce();  // folds 90% (the compactor's first, full fold)
  if (!first.ok()) return 1;
  appended += p.Run(events - appended);
  const double append_s = Seconds(clock::MonotonicNanos() - t) - Seconds(first->fold_ns + first->serialize_ns + first->write_ns);
  j["append_events_per_s"] = appended / append_s;
  j["snapshot"] = {{"position", first->position}, {"events", first->events}, {"bytes", first->bytes},
                   {"aggregates", first->requests + first->machines + first->templates},
                   {"fold_s", Seconds(first->fold_ns)}, {"serialize_s", Seconds(first->serialize_ns)},
                   {"write_s", Seconds(first->write_ns)}};

  // 2. Rebuild: snapshot + tail versus position 0, interleaved.
  std::vector<double> with, without;
  uint64_t tail = 0;
  for (int r = 0; r < rounds; ++r) {
    handlers::RebuildReport rep;
    t = clock::MonotonicNanos();
    auto a = handlers::DomainState::Rebuild(**s, {}, &rep);
    with.push_back(Seconds(clock::MonotonicNanos() - t));
    tail = rep.tail_events;
    t = clock::MonotonicNanos();
    auto b = handlers::DomainState::Rebuild(**s, {.use_snapshot = false});
    without.push_back(Seconds(clock::MonotonicNanos() - t));
    if (!a.ok() || !b.ok() || a->events() != b->events()) {
      std::fprintf(stderr, "snapshot_bench: rebuilds disagree\n");
      return 1;
    }
  }
  j["rebuild"] = {{"snapshot_plus_tail_s", Median(with)}, {"from_zero_s", Median(without)},
                  {"tail_events", tail}, {"speedup", Median(without) / Median(with)}};

  // 3. Replay with a header filter versus an unfiltered scan.
  std::vector<double> filtered, scan;
  const uint32_t want = static_cast<uint32_t>(schema::EventBody::RequestCompletedEvent);
  uint64_t matched = 0, total = 0;
  for (int r = 0; r < rounds; ++r) {
    matched = 0;
    t = clock::MonotonicNanos();
    (void)(*s)->ReadAll(0, [&](const store::EventView& v) {
      matched += v.type == want;
      return true;
    });
    filtered.push_back(Seconds(clock::MonotonicNanos() - t));
    total = 0;
    t = clock::MonotonicNanos();
    (void)(*s)->ReadAll(0, [&](const store::EventView& v) {
      total += v.payload.size() > 0;
      return true;
    });
    scan.push_back(Seconds(clock::MonotonicNanos() - t));
  }
  j["replay_filter"] = {{"events_per_s", appended / Median(filtered)}, {"matched", matched},
                        {"scan_events_per_s", appended / Median(scan)}};

  // 4. Producers with and without a compactor running, interleaved; 2 s windows.
  std::vector<double> alone, beside;
  Producer q(**s, 2);
  for (int r = 0; r < rounds; ++r) {
    for (bool compacting : {false, true}) {
      pid_t pid = 0;
      if (compacting) {
        c->reset();  // the child takes the compactor lock
        pid = ::fork();
        if (pid == 0) {
          auto cs = store::EventStore::Open(dir, {});
          if (!cs.ok()) _exit(1);
          auto cc = handlers::Compactor::Open(**cs, {});
          if (!cc.ok()) _exit(2);
          // As `hostfactory compact --watch` runs by default: a snapshot every 1,000,000 events.
          volatile std::sig_atomic_t never = 0;
          _exit((*cc)->Watch(&never, [](const handlers::CompactionReport&) {}).ok() ? 0 : 3);
        }
        ::usleep(100'000);
      }
      t = clock::MonotonicNanos();
      uint64_t n = q.Run(UINT64_MAX, t + 2'000'000'000);
      const double rate = n / Seconds(clock::MonotonicNanos() - t);
      (compacting ? beside : alone).push_back(rate);
      if (pid) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
      }
    }
  }
  j["compactor_interference"] = {{"alone_events_per_s", Median(alone)}, {"with_compactor_events_per_s", Median(beside)},
                                 {"ratio", Median(beside) / Median(alone)}, {"alone", alone}, {"with", beside}};
  s->reset();
  std::filesystem::remove_all(std::filesystem::path(dir).parent_path());

  const auto& sn = j["snapshot"];
  const auto& rb = j["rebuild"];
  const auto& rf = j["replay_filter"];
  const auto& ci = j["compactor_interference"];
  std::printf("log: %llu events appended at %.2f M/s (full semantics, one event per append)\n",
              static_cast<unsigned long long>(appended), j["append_events_per_s"].get<double>() / 1e6);
  std::printf("snapshot of %llu events, %llu aggregates, %.1f MiB: fold %.2f s, serialize %.2f s, write %.3f s\n",
              static_cast<unsigned long long>(sn["events"].get<uint64_t>()),
              static_cast<unsigned long long>(sn["aggregates"].get<uint64_t>()), sn["bytes"].get<double>() / 1048576.0,
              sn["fold_s"].get<double>(), sn["serialize_s"].get<double>(), sn["write_s"].get<double>());
  std::printf("rebuild (median of %d): snapshot + %llu-event tail %.3f s, from position 0 %.3f s -> %.1fx\n", rounds,
              static_cast<unsigned long long>(rb["tail_events"].get<uint64_t>()), rb["snapshot_plus_tail_s"].get<double>(),
              rb["from_zero_s"].get<double>(), rb["speedup"].get<double>());
  std::printf("replay with a header filter: %.1f M events/s (unfiltered scan of the same log: %.1f M/s)\n",
              rf["events_per_s"].get<double>() / 1e6, rf["scan_events_per_s"].get<double>() / 1e6);
  std::printf("producer with a compactor running: %.2f M/s vs %.2f M/s alone -> %.2fx (medians of %d interleaved 2 s rounds)\n",
              ci["with_compactor_events_per_s"].get<double>() / 1e6, ci["alone_events_per_s"].get<double>() / 1e6,
              ci["ratio"].get<double>(), rounds);
  if (!out.empty()) std::ofstream(out) << j.dump(2) << "\n";
  return 0;
}
