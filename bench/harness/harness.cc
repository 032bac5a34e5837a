// RunSuite: every measurement in rounds, interleaved; results with baselines and ratios; files and plots.
#include "bench/harness/harness.h"

#include <sys/mman.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>

#include "bench/harness/transports.h"
#include "handlers/envelope.h"
#include "ipc/clock.h"
#include "store/consumer_group.h"
#include "store/event_store.h"
#include "store/subscription.h"

namespace hfe::bench {

using clock::MonotonicNanos;

Percentiles Summarise(std::vector<int64_t> v) {
  Percentiles p;
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return static_cast<double>(v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))]); };
  p = {at(0.5), at(0.9), at(0.99), at(0.999), at(0.9999), static_cast<double>(v.back())};
  return p;
}

nlohmann::json ToJson(const Percentiles& p) {
  return {{"p50", p.p50}, {"p90", p.p90}, {"p99", p.p99}, {"p999", p.p999}, {"p9999", p.p9999}, {"max", p.max}};
}

nlohmann::json MachineInfo() {
  nlohmann::json m;
  std::ifstream cpu("/proc/cpuinfo");
  for (std::string line; std::getline(cpu, line);) {
    if (line.rfind("model name", 0) == 0) {
      m["cpu"] = line.substr(line.find(':') + 2);
      break;
    }
  }
  m["cores"] = sysconf(_SC_NPROCESSORS_ONLN);
  utsname u;
  if (uname(&u) == 0) m["kernel"] = std::string(u.sysname) + " " + u.release;
  std::ifstream gov("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor");
  std::string g;
  m["governor"] = std::getline(gov, g) ? g : "not visible";
  m["date"] = clock::FormatIso8601(clock::WallNanos());
  return m;
}

namespace {

// ------------------------------------------------------------------------------------------ throughput
std::string TempStore(const char* tag) {
  char tmpl[128];
  std::snprintf(tmpl, sizeof tmpl, "/dev/shm/hfe-bench-%s-XXXXXX", tag);
  return std::string(::mkdtemp(tmpl)) + "/store";
}
void RemoveStore(const std::string& path) { std::filesystem::remove_all(std::filesystem::path(path).parent_path()); }

store::StoreOptions BenchStoreOptions(uint64_t streams = 1024) {
  store::StoreOptions o;
  o.create_if_missing = true;
  o.segment_size = 256ull << 20;
  o.stream_capacity = streams;
  o.dedup_window = 1u << 20;
  return o;
}

double MemcpyFloor(int64_t records) {
  const size_t size = 256u << 20;
  auto* dst = static_cast<uint8_t*>(::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0));
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
  ::munmap(dst, size);
  return static_cast<double>(records) / secs;
}

double PipeStream(int64_t messages) {
  int fds[2];
  if (::pipe(fds) != 0) return 0;
  pid_t child = ::fork();
  if (child == 0) {
    Pin(1);
    ::close(fds[1]);
    uint8_t buf[128 * 64];
    int64_t bytes = 0;
    while (bytes < messages * 128) {
      ssize_t k = ::read(fds[0], buf, sizeof buf);
      if (k <= 0) break;
      bytes += k;
    }
    ::_exit(0);
  }
  Pin(0);
  ::close(fds[0]);
  uint8_t msg[128] = {};
  int64_t t0 = MonotonicNanos();
  for (int64_t i = 0; i < messages; ++i) {
    if (::write(fds[1], msg, sizeof msg) != sizeof msg) break;
  }
  ::close(fds[1]);
  ::waitpid(child, nullptr, 0);
  Unpin();
  return static_cast<double>(messages) / (static_cast<double>(MonotonicNanos() - t0) / 1e9);
}

// producers x events/producer -> consumers (1: a subscription; more: a consumer group). Events/s from the
// first append to the last event handled.
double PipelineStream(int producers, int consumers, int64_t per_producer) {
  std::string path = TempStore("stream");
  { auto s = store::EventStore::Open(path, BenchStoreOptions()); if (!s.ok()) return 0; }
  const int64_t total = per_producer * producers;
  auto* shared = static_cast<std::atomic<int64_t>*>(
      ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0));
  std::atomic<int64_t>& handled = shared[0];
  std::atomic<int64_t>& done_at = shared[8];
  std::atomic<int64_t>& ready = shared[16];
  std::vector<pid_t> kids;
  for (int c = 0; c < consumers; ++c) {
    pid_t p = ::fork();
    if (p == 0) {
      Pin(1 + c);
      auto s = store::EventStore::Open(path, BenchStoreOptions());
      if (!s.ok()) ::_exit(1);
      store::EventStore::Visitor count = [&](const store::EventView&) { return true; };
      if (consumers == 1) {
        store::SubscriptionOptions o;
        o.wait = store::WaitStrategy::kSpin;
        auto sub = store::Subscription::Open(**s, "sink", o);
        if (!sub.ok()) ::_exit(2);
        ready.fetch_add(1);
        while (handled.load(std::memory_order_relaxed) < total) {
          auto n = (*sub)->Poll(count, 256);
          if (!n.ok()) ::_exit(3);
          (*sub)->AckDelivered();
          if (*n) handled.fetch_add(static_cast<int64_t>(*n), std::memory_order_relaxed);
        }
      } else {
        auto m = store::GroupMember::Join(**s, "sinks", {});
        if (!m.ok()) ::_exit(2);
        ready.fetch_add(1);
        while (handled.load(std::memory_order_relaxed) < total) {
          auto n = (*m)->Poll([](const store::EventView&) { return Status::Ok(); }, 256);
          if (!n.ok()) ::_exit(3);
          if (*n) handled.fetch_add(static_cast<int64_t>(*n), std::memory_order_relaxed);
          else (*m)->Wait(100'000);
        }
      }
      int64_t expected = 0;
      done_at.compare_exchange_strong(expected, MonotonicNanos());
      ::_exit(0);
    }
    kids.push_back(p);
  }
  while (ready.load() < consumers) ::usleep(1000);
  const int64_t t0 = MonotonicNanos();
  for (int p = 0; p < producers; ++p) {
    pid_t pid = ::fork();
    if (pid == 0) {
      Pin(p);
      auto s = store::EventStore::Open(path, BenchStoreOptions());
      if (!s.ok()) ::_exit(1);
      uint8_t payload[128] = {0x5a};
      // One event per call, pipelined: each verdict is collected (and checked) 256 calls later.
      store::AppendTicket tickets[256];
      for (int64_t i = 0; i < per_producer; ++i) {
        store::EventData e{store::EventId{static_cast<uint64_t>(p) + 1, static_cast<uint64_t>(i) + 1}, 1, 0, {payload, 128}};
        store::AppendTicket& t = tickets[i & 255];
        if (i >= 256 && !(*s)->Await(t).ok()) ::_exit(2);
        auto next = (*s)->AppendAsync("stream-" + std::to_string(i % 64), store::ExpectedVersion::Any(), {&e, 1});
        if (!next.ok()) ::_exit(2);
        t = *next;
      }
      for (int64_t i = std::max<int64_t>(0, per_producer - 256); i < per_producer; ++i) {
        if (!(*s)->Await(tickets[i & 255]).ok()) ::_exit(2);
      }
      ::_exit(0);
    }
    kids.push_back(pid);
  }
  for (pid_t k : kids) ::waitpid(k, nullptr, 0);
  Unpin();
  double secs = static_cast<double>(done_at.load() - t0) / 1e9;
  ::munmap(shared, 4096);
  RemoveStore(path);
  return secs > 0 ? static_cast<double>(total) / secs : 0;
}

double FullSemantics(int64_t events, uint64_t streams) {
  std::string path = TempStore("full");
  double rate = 0;
  {
    auto s = store::EventStore::Open(path, BenchStoreOptions(streams + streams / 4));
    if (!s.ok()) return 0;
    std::vector<std::string> names(streams);
    for (uint64_t i = 0; i < streams; ++i) names[i] = "request-" + std::to_string(i);
    std::vector<uint64_t> next(streams, 0);
    uint8_t payload[128] = {};
    int64_t t0 = MonotonicNanos();
    for (int64_t n = 0; n < events; ++n) {
      uint64_t i = static_cast<uint64_t>(n) % streams;
      store::EventData e{store::EventId{0x3000, static_cast<uint64_t>(n) + 1}, 1, 0, {payload, 128}};
      auto exp = next[i] == 0 ? store::ExpectedVersion::NoStream() : store::ExpectedVersion::Exact(next[i] - 1);
      if (!(*s)->Append(names[i], exp, {&e, 1}).ok()) return 0;
      ++next[i];
    }
    rate = static_cast<double>(events) / (static_cast<double>(MonotonicNanos() - t0) / 1e9);
  }
  RemoveStore(path);
  return rate;
}

double EncodeAppend(int64_t events) {
  std::string path = TempStore("encode");
  double rate = 0;
  {
    auto s = store::EventStore::Open(path, BenchStoreOptions());
    if (!s.ok()) return 0;
    flatbuffers::FlatBufferBuilder b(512);
    int64_t t0 = MonotonicNanos();
    for (int64_t n = 0; n < events; ++n) {
      b.Clear();
      auto body = schema::CreateRequestCreatedEventDirect(b, "request-1", schema::RequestType::Provision, "tpl-a", 3, 600);
      handlers::EnvelopeMeta meta;
      meta.event_id = store::EventId{0x4000, static_cast<uint64_t>(n) + 1};
      meta.stream_id = "request-1";
      meta.stream_type = "request";
      store::EventData ev;
      handlers::FinishEnvelope(b, meta, schema::EventBody::RequestCreatedEvent, body.Union(), &ev);
      if (!(*s)->Append("request-1", store::ExpectedVersion::Any(), {&ev, 1}).ok()) return 0;
    }
    rate = static_cast<double>(events) / (static_cast<double>(MonotonicNanos() - t0) / 1e9);
  }
  RemoveStore(path);
  return rate;
}

// Replay with a header filter: read everything, deliver one type in three (no payload decode).
double Replay(int64_t events) {
  std::string path = TempStore("replay");
  double rate = 0;
  {
    auto s = store::EventStore::Open(path, BenchStoreOptions());
    if (!s.ok()) return 0;
    uint8_t payload[128] = {};
    store::EventData batch[64];
    for (int64_t n = 0; n < events; n += 64) {
      for (int i = 0; i < 64; ++i) batch[i] = {store::EventId{0x5000, static_cast<uint64_t>(n + i) + 1}, static_cast<uint32_t>(1 + (n + i) % 3), 0, {payload, 128}};
      if (!(*s)->Append("stream-" + std::to_string(n % 1000), store::ExpectedVersion::Any(), batch).ok()) return 0;
    }
    store::SubscriptionOptions o;
    o.types = {2};
    auto sub = store::Subscription::Open(**s, "replay", o);
    if (!sub.ok()) return 0;
    uint64_t sum = 0;
    store::EventStore::Visitor use = [&](const store::EventView& e) { return sum += e.payload[0], true; };
    int64_t t0 = MonotonicNanos();
    for (;;) {
      auto n = (*sub)->Poll(use, 4096);
      if (!n.ok() || *n == 0) break;
    }
    rate = static_cast<double>(events) / (static_cast<double>(MonotonicNanos() - t0) / 1e9);
    volatile uint64_t consumed = sum;  // the reads must not be optimised away
    (void)consumed;
  }
  RemoveStore(path);
  return rate;
}

// Log bytes one 128-byte event takes, appended alone and in batches of 16 (stream "request-1"): the tail's
// advance over a run of appends, divided by the events.
nlohmann::json LogBytesPerEvent() {
  std::string path = TempStore("bytes");
  nlohmann::json out;
  {
    auto s = store::EventStore::Open(path, BenchStoreOptions());
    if (!s.ok()) return {{"single", 0}, {"batch16", 0}};
    uint8_t payload[128] = {};
    uint64_t id = 0;
    for (int batch : {1, 16}) {
      const uint64_t before = (*s)->Stats().tail_position;
      constexpr int kEvents = 1024;
      store::EventData evs[16];
      for (int n = 0; n < kEvents; n += batch) {
        for (int i = 0; i < batch; ++i) evs[i] = {store::EventId{0x6000, ++id}, 1, 0, {payload, 128}};
        if (!(*s)->Append("request-1", store::ExpectedVersion::Any(), {evs, static_cast<size_t>(batch)}).ok()) break;
      }
      out[batch == 1 ? "single" : "batch16"] = static_cast<double>((*s)->Stats().tail_position - before) / kEvents;
    }
  }
  RemoveStore(path);
  return out;
}

// ------------------------------------------------------------------------------------------ the suite
struct LatencyTest {
  std::string name;            // e.g. rtt_128 (the pipeline's figure) and oneway_128 come from one run
  size_t size;
  Transport pipeline;
  std::vector<Transport> baselines;
};

struct RateTest {
  std::string name;
  std::function<double()> pipeline;
  std::map<std::string, std::function<double()>> baselines;
  double bytes_per_event;
};

struct Series {
  std::vector<Percentiles> rounds;   // per round
  std::vector<int64_t> all;          // every sample of every round, for the percentile files
};

void WriteHgrm(const std::string& path, std::vector<int64_t> v) {
  if (v.empty()) return;
  std::sort(v.begin(), v.end());
  std::ofstream f(path);
  f << "       Value     Percentile TotalCount 1/(1-Percentile)\n\n";
  const double n = static_cast<double>(v.size());
  for (double q = 0; q < 1.0; q += (1.0 - q) / 10.0 + 1e-9) {
    size_t i = std::min(v.size() - 1, static_cast<size_t>(q * n));
    char line[128];
    std::snprintf(line, sizeof line, "%12.3f %14.12f %10zu %14.2f\n", static_cast<double>(v[i]) / 1000.0, q, i + 1, 1.0 / (1.0 - q));
    f << line;
    if (1.0 / (1.0 - q) > n) break;
  }
  char last[128];
  std::snprintf(last, sizeof last, "%12.3f %14.12f %10zu %14s\n", static_cast<double>(v.back()) / 1000.0, 1.0, v.size(), "inf");
  f << last;
  double mean = 0, var = 0;
  for (int64_t x : v) mean += static_cast<double>(x);
  mean /= n;
  for (int64_t x : v) var += (static_cast<double>(x) - mean) * (static_cast<double>(x) - mean);
  f << "#[Mean    = " << mean / 1000.0 << ", StdDeviation   = " << std::sqrt(var / n) / 1000.0
    << "]\n#[Max     = " << static_cast<double>(v.back()) / 1000.0
    << ", Total count    = " << v.size() << "]\n#[Buckets = 0, SubBuckets = 0]\n";
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

Percentiles MedianPercentiles(const std::vector<Percentiles>& rounds) {
  Percentiles p;
  auto med = [&](double Percentiles::*m) {
    std::vector<double> v;
    for (const auto& r : rounds) v.push_back(r.*m);
    return Median(v);
  };
  p.p50 = med(&Percentiles::p50);
  p.p90 = med(&Percentiles::p90);
  p.p99 = med(&Percentiles::p99);
  p.p999 = med(&Percentiles::p999);
  p.p9999 = med(&Percentiles::p9999);
  p.max = med(&Percentiles::max);
  return p;
}

void Plot(const std::string& dir, const std::string& latency_files_json, const std::string& throughput_dat) {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
    std::fprintf(stderr, "bench: gnuplot not found; plots skipped (tools/setup.sh installs gnuplot-nox)\n");
    return;
  }
  std::ofstream g(dir + "/plots.gp");
  g << "set terminal pngcairo size 1000,600 noenhanced font ',10'\n"
    << "set output '" << dir << "/rtt_128.png'\n"
    << "set title 'Round trip between two processes, 128-byte messages (percentile distribution, all rounds)'\n"
    << "set logscale x\nset logscale y\nset grid\nset key top left\n"
    << "set xlabel 'percentile'\nset ylabel 'latency (us)'\n"
    << "set xtics ('50%%' 2, '90%%' 10, '99%%' 100, '99.9%%' 1000, '99.99%%' 10000, '99.999%%' 100000)\n"
    << "plot " << latency_files_json << "\n"
    << "set output '" << dir << "/throughput.png'\n"
    << "unset logscale x\nset logscale y\nset title 'Throughput, median of rounds (M events/s, log scale)'\n"
    << "set style fill solid 0.8\nset boxwidth 0.7\nset xtics rotate by 35 right\nset bmargin 12\nset lmargin 16\n"
    << "set xlabel 'hfevents (blue) beside the baselines of the same run (grey)'\nset ylabel 'M events/s'\nunset key\n"
    << "plot '" << throughput_dat << "' using 0:2:($3 > 0 ? 0x3366cc : 0xaaaaaa):xtic(1) with boxes lc rgb variable\n";
  g.close();
  if (std::system(("gnuplot '" + dir + "/plots.gp' 2>" + dir + "/gnuplot.log").c_str()) != 0) {
    std::fprintf(stderr, "bench: gnuplot failed (see %s/gnuplot.log)\n", dir.c_str());
  }
}

}  // namespace

nlohmann::json RunSuite(const SuiteOptions& o, bool print_table) {
  const int samples = o.quick ? 20000 : 100000;
  const int64_t events = o.quick ? 300000 : 2000000;
  const std::vector<Transport> all_baselines = {Transport::kCacheLine, Transport::kPipe, Transport::kSocketPair,
                                                Transport::kBoostMq, Transport::kMoodycamelThreads};
  std::vector<LatencyTest> lat = {{"128", 128, Transport::kPipelineSpin, all_baselines}};
  if (!o.quick) {
    for (size_t size : {32, 512, 4096}) {
      lat.push_back({std::to_string(size), size, Transport::kPipelineSpin,
                     {Transport::kCacheLine, Transport::kPipe, Transport::kSocketPair}});
    }
  }
  // Parked (futex) subscribers compare with the transports that also sleep in the kernel.
  for (size_t size : o.quick ? std::vector<size_t>{128} : std::vector<size_t>{32, 128, 512, 4096}) {
    lat.push_back({std::to_string(size) + "_park", size, Transport::kPipelinePark, {Transport::kPipe, Transport::kSocketPair}});
  }

  std::vector<RateTest> rates = {
      {"throughput_1p1c_128", [=] { return PipelineStream(1, 1, events); },
       {{"memcpy", [=] { return MemcpyFloor(events * 10); }}, {"pipe", [=] { return PipeStream(events); }}}, 128},
      {"throughput_2p1c_128", [=] { return PipelineStream(2, 1, events / 2); },
       {{"memcpy", [=] { return MemcpyFloor(events * 10); }}}, 128},
      {"throughput_1p3c_group_128", [=] { return PipelineStream(1, 3, events); },
       {{"memcpy", [=] { return MemcpyFloor(events * 10); }}}, 128},
      {"append_full_semantics", [=] { return FullSemantics(events, 1u << 20); },
       {{"memcpy", [=] { return MemcpyFloor(events * 10); }}}, 128},
      {"encode_append_128", [=] { return EncodeAppend(events); },
       {{"memcpy", [=] { return MemcpyFloor(events * 10); }}}, 128},
      {"replay", [=] { return Replay(events * 3); }, {{"memcpy", [=] { return MemcpyFloor(events * 10); }}}, 128},
  };

  if (!o.only.empty()) {
    std::vector<std::string> known;
    for (const auto& t : lat) known.insert(known.end(), {"rtt_" + t.name, "oneway_" + t.name});
    for (const auto& t : rates) known.push_back(t.name);
    known.push_back("log_bytes_per_event_128");
    for (const std::string& name : o.only) {
      if (std::find(known.begin(), known.end(), name) == known.end()) {
        std::string list;
        for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
        return {{"error", "bench --only: no result is named '" + name + "' in this suite" +
                              (o.quick ? " (--quick)" : "") + "; expected one of: " + list}};
      }
    }
    auto wanted = [&](const std::string& name) { return std::find(o.only.begin(), o.only.end(), name) != o.only.end(); };
    std::erase_if(lat, [&](const LatencyTest& t) { return !wanted("rtt_" + t.name) && !wanted("oneway_" + t.name); });
    std::erase_if(rates, [&](const RateTest& t) { return !wanted(t.name); });
  }

  // name -> transport -> series (round trip and one way separately)
  std::map<std::string, std::map<std::string, Series>> rtt, oneway;
  std::map<std::string, std::map<std::string, std::vector<double>>> rate_rounds;
  auto note = [&](const std::string& s) {
    if (o.progress) std::fprintf(stderr, "bench: %s\n", s.c_str());
  };
  for (int r = 1; r <= o.rounds; ++r) {
    for (const auto& t : lat) {
      std::vector<Transport> order = t.baselines;
      order.insert(order.begin() + static_cast<long>(order.size() / 2), t.pipeline);  // pipeline amid its baselines
      for (Transport tr : order) {
        note("round " + std::to_string(r) + " latency " + t.name + " " + TransportName(tr));
        RoundTrip m = MeasureRoundTrip(tr, t.size, samples, o.rate);
        std::string who = tr == t.pipeline ? "pipeline" : TransportName(tr);
        for (auto [map, v] : {std::pair{&rtt, &m.rtt}, std::pair{&oneway, &m.oneway}}) {
          Series& s = (*map)[t.name][who];
          s.rounds.push_back(Summarise(*v));
          s.all.insert(s.all.end(), v->begin(), v->end());
        }
      }
    }
    for (const auto& t : rates) {
      note("round " + std::to_string(r) + " " + t.name);
      for (const auto& [bname, fn] : t.baselines) rate_rounds[t.name][bname].push_back(fn());
      rate_rounds[t.name]["pipeline"].push_back(t.pipeline());
    }
  }

  nlohmann::json out;
  out["machine"] = MachineInfo();
  out["options"] = {{"quick", o.quick}, {"rounds", o.rounds}, {"samples", samples}, {"events", events},
                    {"rate", o.rate}, {"coordinated_omission_corrected", o.rate > 0}};
  nlohmann::json results = nlohmann::json::array();
  std::string plot_lines;
  if (!o.out_dir.empty()) std::filesystem::create_directories(o.out_dir);
  for (auto* kind : {&rtt, &oneway}) {
    const std::string prefix = kind == &rtt ? "rtt_" : "oneway_";
    for (const auto& [name, by] : *kind) {
      nlohmann::json res;
      res["name"] = prefix + name;
      res["kind"] = "latency_ns";
      Percentiles pipe = MedianPercentiles(by.at("pipeline").rounds);
      res["pipeline"] = ToJson(pipe);
      std::vector<double> spread;
      for (const auto& p : by.at("pipeline").rounds) spread.push_back(p.p50);
      res["pipeline"]["p50_rounds"] = spread;
      const nlohmann::json figures = ToJson(pipe);
      for (const auto& [k, v] : figures.items()) res[k] = v;
      for (const auto& [who, s] : by) {
        if (who == "pipeline") continue;
        Percentiles b = MedianPercentiles(s.rounds);
        res["baselines"][who] = ToJson(b);
        res["ratios_p50"][who] = b.p50 > 0 ? pipe.p50 / b.p50 : 0;
      }
      if (!o.out_dir.empty()) {
        for (const auto& [who, s] : by) {
          std::string file = o.out_dir + "/" + prefix + name + "_" + who + ".hgrm";
          WriteHgrm(file, s.all);
          if (prefix == "rtt_" && name == "128") {
            if (!plot_lines.empty()) plot_lines += ", ";
            plot_lines += "'" + file + "' every ::2 using 4:1 with lines lw 2 title '" +
                          (who == "pipeline" ? std::string("hfevents") : who) + "'";
          }
        }
      }
      results.push_back(res);
    }
  }
  std::string dat = o.out_dir.empty() ? "" : o.out_dir + "/throughput.dat";
  std::ofstream datf;
  if (!dat.empty()) datf.open(dat);
  for (const auto& t : rates) {
    auto& by = rate_rounds[t.name];
    nlohmann::json res;
    res["name"] = t.name;
    res["kind"] = "events_per_s";
    double p = Median(by["pipeline"]);
    res["pipeline"] = {{"events_per_s", p}, {"bytes_per_s", p * t.bytes_per_event}, {"rounds", by["pipeline"]}};
    res["events_per_s"] = p;
    res["bytes_per_s"] = p * t.bytes_per_event;
    for (const auto& [bname, vals] : by) {
      if (bname == "pipeline") continue;
      double b = Median(vals);
      res["baselines"][bname] = {{"events_per_s", b}, {"rounds", vals}};
      res["ratios"][bname] = b > 0 ? p / b : 0;
      if (datf) datf << "\"" << t.name << " (" << bname << ")\" " << b / 1e6 << " 0\n";
    }
    if (datf) datf << "\"" << t.name << "\" " << p / 1e6 << " 1\n";
    results.push_back(res);
  }
  if (datf) datf.close();
  if (o.only.empty() || std::find(o.only.begin(), o.only.end(), "log_bytes_per_event_128") != o.only.end()) {
    nlohmann::json res;
    res["name"] = "log_bytes_per_event_128";
    res["kind"] = "bytes_per_event";
    res["pipeline"] = LogBytesPerEvent();
    results.push_back(res);
  }
  out["results"] = results;

  if (print_table) {
    const auto& m = out["machine"];
    std::printf("machine: %s, %d cores, %s, governor %s\n", m.value("cpu", "?").c_str(), m.value("cores", 0),
                m.value("kernel", "?").c_str(), m.value("governor", "?").c_str());
    std::printf("%d rounds, interleaved; medians of rounds; spread = min..max of the pipeline's p50 (or rate) over rounds\n\n",
                o.rounds);
    std::printf("%-26s %10s %10s %10s %10s %17s   %s\n", "latency (ns)", "p50", "p99", "p99.9", "max", "p50 spread",
                "baselines: p50 (pipeline / baseline)");
    for (const auto& r : results) {
      if (r["kind"] != "latency_ns") continue;
      auto rounds = r["pipeline"]["p50_rounds"].get<std::vector<double>>();
      std::string base;
      for (const auto& [who, b] : r["baselines"].items()) {
        char part[96];
        std::snprintf(part, sizeof part, "%s %.0f (%.2fx)  ", who.c_str(), b["p50"].get<double>(), r["ratios_p50"][who].get<double>());
        base += part;
      }
      std::printf("%-26s %10.0f %10.0f %10.0f %10.0f %8.0f..%-8.0f   %s\n", r["name"].get<std::string>().c_str(),
                  r["p50"].get<double>(), r["p99"].get<double>(), r["p999"].get<double>(), r["max"].get<double>(),
                  *std::min_element(rounds.begin(), rounds.end()), *std::max_element(rounds.begin(), rounds.end()), base.c_str());
    }
    std::printf("\n%-26s %12s %17s   %s\n", "throughput", "M events/s", "spread", "baselines: M/s (pipeline / baseline)");
    for (const auto& r : results) {
      if (r["kind"] != "events_per_s") continue;
      auto rounds = r["pipeline"]["rounds"].get<std::vector<double>>();
      std::string base;
      for (const auto& [who, b] : r["baselines"].items()) {
        char part[96];
        std::snprintf(part, sizeof part, "%s %.2f (%.4fx)  ", who.c_str(), b["events_per_s"].get<double>() / 1e6, r["ratios"][who].get<double>());
        base += part;
      }
      std::printf("%-26s %12.3f %8.3f..%-8.3f   %s\n", r["name"].get<std::string>().c_str(), r["events_per_s"].get<double>() / 1e6,
                  *std::min_element(rounds.begin(), rounds.end()) / 1e6, *std::max_element(rounds.begin(), rounds.end()) / 1e6,
                  base.c_str());
    }
  }
  if (print_table) {
    for (const auto& r : results) {
      if (r["kind"] != "bytes_per_event") continue;
      std::printf("\n%-26s %12.1f alone, %.1f in batches of 16 (log bytes per 128-byte event)\n",
                  r["name"].get<std::string>().c_str(), r["pipeline"]["single"].get<double>(),
                  r["pipeline"]["batch16"].get<double>());
    }
  }
  if (!o.out_dir.empty()) {
    std::ofstream(o.out_dir + "/results.json") << out.dump(2) << "\n";
    if (o.plots && !plot_lines.empty()) Plot(o.out_dir, plot_lines, dat);
  }
  return out;
}

}  // namespace hfe::bench
