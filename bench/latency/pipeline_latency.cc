// Cross-process latency and throughput of the pipeline (producer process -> store -> handler process),
// beside the floors measured in the same run, interleaved round by round:
//   pingpong     one cache line bounced between two processes (round trip): the physical floor
//   rtt_128      producer appends a 128-byte event, a handler process (subscription, spin) appends it back
//                on a second stream, the producer's subscription receives it (round trip)
//   oneway_128   producer appends; the handler process measures occurred -> delivered (one event in flight)
//   memcpy_128   128-byte records copied into a pre-faulted shared mapping (records/s): throughput floor
//   throughput   1 producer process -> 1 handler process, 128-byte events, as fast as the producer appends
// Every sample is kept and sorted: the percentiles are exact. Processes are pinned to separate cores.
// Usage: pipeline_latency [--rounds N] [--samples N] [--events N] [--json FILE] [--quick]
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ipc/clock.h"
#include "store/event_store.h"
#include "store/subscription.h"

namespace {

using namespace hfe;
using clock::MonotonicNanos;

void Pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu % std::max(1, static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN))), &set);
  sched_setaffinity(0, sizeof set, &set);
}

template <typename T>
T* SharedArray(size_t n) {
  void* p = ::mmap(nullptr, sizeof(T) * n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  return static_cast<T*>(p);
}

struct Percentiles {
  double p50, p90, p99, p999, p9999, max;
};
Percentiles Summarise(std::vector<int64_t> v) {
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return static_cast<double>(v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))]); };
  return {at(0.5), at(0.9), at(0.99), at(0.999), at(0.9999), static_cast<double>(v.back())};
}

// ---------------------------------------------------------------------------------------------- floors
std::vector<int64_t> PingPong(int samples) {
  auto* lines = SharedArray<std::atomic<uint64_t>>(64);
  std::atomic<uint64_t>& ping = lines[0];
  std::atomic<uint64_t>& pong = lines[16];  // 128 bytes apart
  pid_t child = fork();
  if (child == 0) {
    Pin(1);
    for (uint64_t i = 1; i <= static_cast<uint64_t>(samples) + 1000; ++i) {
      while (ping.load(std::memory_order_acquire) != i) {
      }
      pong.store(i, std::memory_order_release);
    }
    _exit(0);
  }
  Pin(0);
  std::vector<int64_t> rtt;
  for (uint64_t i = 1; i <= static_cast<uint64_t>(samples) + 1000; ++i) {
    int64_t t0 = MonotonicNanos();
    ping.store(i, std::memory_order_release);
    while (pong.load(std::memory_order_acquire) != i) {
    }
    if (i > 1000) rtt.push_back(MonotonicNanos() - t0);
  }
  waitpid(child, nullptr, 0);
  munmap(lines, 64 * 8);
  return rtt;
}

double MemcpyRate(int64_t records) {
  const size_t size = 256u << 20;
  auto* dst = SharedArray<uint8_t>(size);
  uint8_t src[128];
  std::memset(src, 0x5a, sizeof src);
  size_t off = 0;
  int64_t t0 = MonotonicNanos();
  for (int64_t i = 0; i < records; ++i) {
    if (off + 128 > size) off = 0;
    std::memcpy(dst + off, src, 128);
    asm volatile("" ::: "memory");
    off += 128;
  }
  double secs = static_cast<double>(MonotonicNanos() - t0) / 1e9;
  munmap(dst, size);
  return static_cast<double>(records) / secs;
}

// ---------------------------------------------------------------------------------------------- pipeline
struct Store {
  std::string dir;
  explicit Store(const char* tag) {
    char tmpl[128];
    std::snprintf(tmpl, sizeof tmpl, "/dev/shm/hfe-latency-%s-XXXXXX", tag);
    dir = mkdtemp(tmpl);
    dir += "/store";
  }
  ~Store() { std::filesystem::remove_all(std::filesystem::path(dir).parent_path()); }
  store::StoreOptions Options() const {
    store::StoreOptions o;
    o.create_if_missing = true;
    o.segment_size = 64ull << 20;
    o.stream_capacity = 1024;
    o.dedup_window = 1u << 20;
    return o;
  }
};

store::EventData Event(uint8_t* payload, uint64_t n) {
  store::EventData e;
  e.id = store::EventId{0x77, n};
  e.type = 1;
  e.payload = {payload, 128};
  return e;
}

std::vector<int64_t> PipelineRtt(int samples) {
  Store st("rtt");
  { auto s = store::EventStore::Open(st.dir, st.Options()); if (!s.ok()) std::abort(); }
  const int total = samples + 1000;
  pid_t child = fork();
  if (child == 0) {
    Pin(1);
    auto s = store::EventStore::Open(st.dir, st.Options());
    store::SubscriptionOptions o;
    o.stream_prefix = "ping";
    o.wait = store::WaitStrategy::kSpin;
    auto sub = store::Subscription::Open(**s, "ponger", o);
    if (!s.ok() || !sub.ok()) _exit(1);
    uint8_t payload[128] = {};
    int answered = 0;
    store::EventStore::Visitor echo = [&](const store::EventView& e) {
      std::memcpy(payload, e.payload.data(), 8);
      store::EventData reply = Event(payload, (1ull << 40) + static_cast<uint64_t>(answered));
      (void)(*s)->Append("pong", store::ExpectedVersion::Any(), {&reply, 1});
      ++answered;
      return true;
    };
    while (answered < total) {
      auto n = (*sub)->Poll(echo, 16);
      if (n.ok() && *n == 0) (*sub)->Wait(1'000'000'000);
      (*sub)->AckDelivered();
    }
    _exit(0);
  }
  Pin(0);
  auto s = store::EventStore::Open(st.dir, st.Options());
  store::SubscriptionOptions o;
  o.stream_prefix = "pong";
  o.wait = store::WaitStrategy::kSpin;
  auto sub = store::Subscription::Open(**s, "pinger", o);
  uint8_t payload[128] = {};
  std::vector<int64_t> rtt;
  store::EventStore::Visitor got = [](const store::EventView&) { return true; };
  for (int i = 0; i < total; ++i) {
    int64_t t0 = MonotonicNanos();
    std::memcpy(payload, &t0, 8);
    store::EventData e = Event(payload, static_cast<uint64_t>(i) + 1);
    (void)(*s)->Append("ping", store::ExpectedVersion::Any(), {&e, 1});
    for (;;) {
      auto n = (*sub)->Poll(got, 1);
      if (n.ok() && *n == 1) break;
    }
    if (i >= 1000) rtt.push_back(MonotonicNanos() - t0);
    (*sub)->AckDelivered();
  }
  waitpid(child, nullptr, 0);
  return rtt;
}

std::vector<int64_t> PipelineOneWay(int samples) {
  Store st("oneway");
  { auto s = store::EventStore::Open(st.dir, st.Options()); if (!s.ok()) std::abort(); }
  const int total = samples + 1000;
  auto* shared = SharedArray<int64_t>(static_cast<size_t>(total) + 8);
  auto* received = reinterpret_cast<std::atomic<int64_t>*>(shared + total);
  pid_t child = fork();
  if (child == 0) {
    Pin(1);
    auto s = store::EventStore::Open(st.dir, st.Options());
    store::SubscriptionOptions o;
    o.wait = store::WaitStrategy::kSpin;
    auto sub = store::Subscription::Open(**s, "oneway", o);
    if (!s.ok() || !sub.ok()) _exit(1);
    int64_t n = 0;
    store::EventStore::Visitor measure = [&](const store::EventView& e) {
      int64_t sent;
      std::memcpy(&sent, e.payload.data(), 8);
      shared[n] = MonotonicNanos() - sent;
      received->store(++n, std::memory_order_release);
      return true;
    };
    while (n < total) {
      auto k = (*sub)->Poll(measure, 16);
      if (k.ok() && *k == 0) (*sub)->Wait(1'000'000'000);
      (*sub)->AckDelivered();
    }
    _exit(0);
  }
  Pin(0);
  auto s = store::EventStore::Open(st.dir, st.Options());
  uint8_t payload[128] = {};
  for (int i = 0; i < total; ++i) {
    int64_t t0 = MonotonicNanos();
    std::memcpy(payload, &t0, 8);
    store::EventData e = Event(payload, static_cast<uint64_t>(i) + 1);
    (void)(*s)->Append("oneway", store::ExpectedVersion::Any(), {&e, 1});
    while (received->load(std::memory_order_acquire) <= i) {
    }
  }
  waitpid(child, nullptr, 0);
  std::vector<int64_t> v(shared + 1000, shared + total);
  munmap(shared, sizeof(int64_t) * (static_cast<size_t>(total) + 8));
  return v;
}

double Throughput1p1c(int64_t events) {
  Store st("tput");
  { auto s = store::EventStore::Open(st.dir, st.Options()); if (!s.ok()) std::abort(); }
  auto* shared = SharedArray<std::atomic<int64_t>>(8);
  pid_t child = fork();
  if (child == 0) {
    Pin(1);
    auto s = store::EventStore::Open(st.dir, st.Options());
    store::SubscriptionOptions o;
    o.wait = store::WaitStrategy::kSpin;
    auto sub = store::Subscription::Open(**s, "sink", o);
    if (!s.ok() || !sub.ok()) _exit(1);
    int64_t n = 0;
    uint64_t sum = 0;
    store::EventStore::Visitor consume = [&](const store::EventView& e) { return sum += e.payload[0], ++n, true; };
    while (n < events) {
      auto k = (*sub)->Poll(consume, 256);
      if (k.ok() && *k == 0) (*sub)->Wait(1'000'000'000);
      (*sub)->AckDelivered();
    }
    shared[1].store(MonotonicNanos() + static_cast<int64_t>(sum & 0), std::memory_order_release);
    _exit(0);
  }
  Pin(0);
  auto s = store::EventStore::Open(st.dir, st.Options());
  uint8_t payload[128] = {0x5a};
  int64_t t0 = MonotonicNanos();
  for (int64_t i = 0; i < events; ++i) {
    store::EventData e = Event(payload, static_cast<uint64_t>(i) + 1);
    (void)(*s)->Append("tput", store::ExpectedVersion::Any(), {&e, 1});
  }
  waitpid(child, nullptr, 0);
  double secs = static_cast<double>(shared[1].load() - t0) / 1e9;
  munmap(shared, 64);
  return static_cast<double>(events) / secs;
}

nlohmann::json LatencyJson(const Percentiles& p) {
  return {{"p50", p.p50}, {"p90", p.p90}, {"p99", p.p99}, {"p999", p.p999}, {"p9999", p.p9999}, {"max", p.max}};
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 3, samples = 100000;
  int64_t events = 1'000'000;
  std::string json_path;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--rounds" && i + 1 < argc) rounds = std::atoi(argv[++i]);
    else if (a == "--samples" && i + 1 < argc) samples = std::atoi(argv[++i]);
    else if (a == "--events" && i + 1 < argc) events = std::atoll(argv[++i]);
    else if (a == "--json" && i + 1 < argc) json_path = argv[++i];
    else if (a == "--quick") samples = 20000, events = 300000;
    else {
      std::fprintf(stderr, "pipeline_latency: unknown argument '%s' (expected --rounds, --samples, --events, --json, --quick)\n", a.c_str());
      return 2;
    }
  }
  std::map<std::string, std::vector<Percentiles>> lat;
  std::map<std::string, std::vector<double>> rate;
  std::printf("%-6s %-12s %9s %9s %9s %9s %9s %9s   (ns)\n", "round", "test", "p50", "p90", "p99", "p99.9", "p99.99", "max");
  for (int r = 1; r <= rounds; ++r) {
    auto show = [&](const char* name, std::vector<int64_t> v) {
      Percentiles p = Summarise(std::move(v));
      lat[name].push_back(p);
      std::printf("%-6d %-12s %9.0f %9.0f %9.0f %9.0f %9.0f %9.0f\n", r, name, p.p50, p.p90, p.p99, p.p999, p.p9999, p.max);
    };
    show("pingpong", PingPong(samples));
    show("rtt_128", PipelineRtt(samples));
    show("oneway_128", PipelineOneWay(samples));
    rate["memcpy_128"].push_back(MemcpyRate(events * 10));
    rate["throughput_1p1c_128"].push_back(Throughput1p1c(events));
    std::printf("%-6d %-12s %.2f M records/s;  pipeline 1p1c %.2f M events/s\n", r, "memcpy_128",
                rate["memcpy_128"].back() / 1e6, rate["throughput_1p1c_128"].back() / 1e6);
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  auto med_p50 = [&](const std::string& n) {
    std::vector<double> v;
    for (auto& p : lat[n]) v.push_back(p.p50);
    return median(v);
  };
  double floor_rtt = med_p50("pingpong");
  std::printf("\nmedians over %d rounds: pingpong p50 %.0f ns; rtt_128 p50 %.0f ns = %.2fx the floor; oneway_128 p50 %.0f ns\n",
              rounds, floor_rtt, med_p50("rtt_128"), med_p50("rtt_128") / floor_rtt, med_p50("oneway_128"));
  double mc = median(rate["memcpy_128"]), tp = median(rate["throughput_1p1c_128"]);
  std::printf("throughput 1p1c %.2f M events/s = %.4fx the memcpy floor (%.1f M records/s)\n", tp / 1e6, tp / mc, mc / 1e6);
  if (!json_path.empty()) {
    nlohmann::json j;
    j["rounds"] = rounds;
    for (auto& [n, ps] : lat) {
      for (auto& p : ps) j["latency_ns"][n].push_back(LatencyJson(p));
    }
    for (auto& [n, vs] : rate) j["events_per_s"][n] = vs;
    FILE* f = std::fopen(json_path.c_str(), "w");
    if (f) {
      std::fputs(j.dump(2).c_str(), f);
      std::fclose(f);
    }
  }
  return 0;
}
