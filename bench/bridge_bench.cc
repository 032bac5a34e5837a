// Kafka bridge figures against librdkafka's mock cluster (the real protocol over loopback, in this process),
// each beside a baseline measured in the same run:
//   - export throughput (events/s from the subscription to broker acknowledgement) beside a bare idempotent
//     librdkafka producer sending the same payloads to the same cluster (the floor the bridge builds on);
//   - end-to-end lag from append to broker acknowledgement (p50/p99/max) at a fixed append rate;
//   - a local producer's append rate with the bridge exporting everything it appends versus alone,
//     interleaved over rounds.
// On this 2-vCPU machine the mock brokers share the cores with the producer and the bridge: the cost figure
// includes the brokers' CPU, which a real cluster runs elsewhere.
// The bridge thread runs at --bridge-nice (default 10, as `hostfactory bridge export` runs by default), so
// it takes the CPU the local producers leave; librdkafka's threads inherit it.
// --broker-nice N runs the mock brokers' threads at nice N (default 0: they compete with the producer here).
// Usage: bridge_bench [--events N] [--rounds R] [--window-ms W] [--rate R] [--bridge-nice N] [--broker-nice N]
//                     [--out FILE.json]
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "handlers/envelope.h"
#include "ipc/clock.h"
#include "store/event_store.h"
#include "tools/bridge/bridge.h"

namespace {

using namespace hfe;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double Percentile(std::vector<int64_t>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return static_cast<double>(v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))]);
}

// The mock brokers' threads are made in a thread at `nice` (they inherit it): brokers stand in for remote
// machines, and a nice value > 0 keeps their CPU from counting against the local producer.
class Mock {
 public:
  explicit Mock(int nice) {
    std::thread([&] {
      (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), nice);
      char err[256];
      rd_kafka_conf_t* c = rd_kafka_conf_new();
      rd_kafka_conf_set(c, "log_level", "0", err, sizeof err);
      rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
      mc_ = rd_kafka_mock_cluster_new(rk_, 3);
    }).join();
  }
  ~Mock() {
    rd_kafka_mock_cluster_destroy(mc_);
    rd_kafka_destroy(rk_);
  }
  std::string Topic(const std::string& name) {
    rd_kafka_mock_topic_create(mc_, name.c_str(), 8, 3);
    return name;
  }
  std::string bootstraps() const { return rd_kafka_mock_cluster_bootstraps(mc_); }

 private:
  rd_kafka_t* rk_;
  rd_kafka_mock_cluster_t* mc_;
};

// Appends one ~128-byte RequestStatusChangedEvent per call to one of 1,024 streams (version Any).
class Appender {
 public:
  explicit Appender(store::EventStore& s) : s_(s) {}
  bool One(uint64_t i) {
    char stream[32];
    std::snprintf(stream, sizeof stream, "request-%04llu", static_cast<unsigned long long>(i % 1024));
    b_.Clear();
    auto body = schema::CreateRequestStatusChangedEventDirect(b_, stream, schema::RequestType::Provision, "pending",
                                                              "in_progress");
    handlers::EnvelopeMeta meta;
    meta.event_id = store::EventId::Random();
    meta.stream_id = stream;
    meta.stream_type = "request";
    store::EventData d;
    handlers::FinishEnvelope(b_, meta, schema::EventBody::RequestStatusChangedEvent, body.Union(), &d);
    return s_.Append(stream, store::ExpectedVersion::Any(), {&d, 1}).ok();
  }

 private:
  store::EventStore& s_;
  flatbuffers::FlatBufferBuilder b_{256};
};

std::unique_ptr<store::EventStore> FreshStore(const std::string& dir) {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  store::StoreOptions o;
  o.create_if_missing = true;
  auto s = store::EventStore::Open(dir, o);
  if (!s.ok()) {
    std::fprintf(stderr, "bridge_bench: %s\n", s.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(*s);
}

// Exports everything in `s` until idle; returns events/s from start to the last acknowledgement.
double ExportAll(store::EventStore& s, Mock& m, const std::string& topic, uint64_t expect) {
  bridge::ExportOptions o;
  o.brokers = m.bootstraps();
  o.topic = topic;
  o.subscription = "bench-" + topic;
  o.idle_exit_ms = 200;
  o.stats_file.clear();
  o.properties = {"log_level=0"};
  std::atomic<uint64_t> acked{0};
  int64_t last_ack = 0;
  o.on_acked = [&](uint64_t, int64_t) {
    acked.fetch_add(1, std::memory_order_relaxed);
    last_ack = clock::MonotonicNanos();
  };
  const int64_t t0 = clock::MonotonicNanos();
  auto r = bridge::RunExport(s, o);
  if (!r.ok() || acked.load() != expect) {
    std::fprintf(stderr, "bridge_bench: export acknowledged %llu of %llu: %s\n",
                 static_cast<unsigned long long>(acked.load()), static_cast<unsigned long long>(expect),
                 r.status().ToString().c_str());
    std::exit(1);
  }
  return static_cast<double>(expect) / (static_cast<double>(last_ack - t0) / 1e9);
}

// The floor: a bare idempotent producer sending the same payloads (keyed by stream) with the same settings.
double RawProducer(store::EventStore& s, Mock& m, const std::string& topic) {
  char err[256];
  rd_kafka_conf_t* c = rd_kafka_conf_new();
  const std::vector<std::pair<const char*, std::string>> props = {
      {"bootstrap.servers", m.bootstraps()}, {"enable.idempotence", "true"}, {"acks", "all"},
      {"linger.ms", "5"}, {"batch.num.messages", "1000"}, {"queue.buffering.max.messages", "101000"},
      {"partitioner", "murmur2_random"}, {"log_level", "0"}};
  for (const auto& [k, v] : props) rd_kafka_conf_set(c, k, v.c_str(), err, sizeof err);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
  uint64_t n = 0;
  const int64_t t0 = clock::MonotonicNanos();
  (void)s.ReadAll(0, [&](const store::EventView& e) {
    while (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY(e.stream.data(), e.stream.size()),
                             RD_KAFKA_V_VALUE(const_cast<uint8_t*>(e.payload.data()), e.payload.size()),
                             RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_poll(rk, 1);
    }
    ++n;
    return true;
  });
  rd_kafka_flush(rk, 60000);
  const double rate = static_cast<double>(n) / (static_cast<double>(clock::MonotonicNanos() - t0) / 1e9);
  rd_kafka_destroy(rk);
  return rate;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t events = 200000;
  int rounds = 3;
  int64_t window_ms = 1000;
  uint64_t rate = 20000;
  int bridge_nice = 10, broker_nice = 0;
  std::string out;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--events" && i + 1 < argc) events = std::stoull(argv[++i]);
    else if (a == "--rounds" && i + 1 < argc) rounds = std::stoi(argv[++i]);
    else if (a == "--window-ms" && i + 1 < argc) window_ms = std::stoll(argv[++i]);
    else if (a == "--rate" && i + 1 < argc) rate = std::stoull(argv[++i]);
    else if (a == "--bridge-nice" && i + 1 < argc) bridge_nice = std::stoi(argv[++i]);
    else if (a == "--broker-nice" && i + 1 < argc) broker_nice = std::stoi(argv[++i]);
    else if (a == "--out" && i + 1 < argc) out = argv[++i];
    else {
      std::fprintf(stderr, "usage: bridge_bench [--events N] [--rounds R] [--window-ms W] [--rate R] [--bridge-nice N] "
                           "[--broker-nice N] [--out FILE.json]\n");
      return 2;
    }
  }
  const std::string dir = "/dev/shm/hfe-bridge-bench-" + std::to_string(::getpid());
  Mock mock(broker_nice);
  nlohmann::json results = nlohmann::json::array();

  // 1. Export throughput beside a bare producer, interleaved.
  std::vector<double> bridge_rates, raw_rates;
  for (int r = 0; r < rounds; ++r) {
    auto s = FreshStore(dir);
    Appender ap(*s);
    for (uint64_t i = 0; i < events; ++i) ap.One(i);
    raw_rates.push_back(RawProducer(*s, mock, mock.Topic("raw-" + std::to_string(r))));
    bridge_rates.push_back(ExportAll(*s, mock, mock.Topic("export-" + std::to_string(r)), events));
  }
  const double br = Median(bridge_rates), rr = Median(raw_rates);
  std::printf("export throughput: %.0f events/s (bare idempotent producer %.0f/s) -> %.2fx; rounds %s\n", br, rr,
              br / rr, nlohmann::json(bridge_rates).dump().c_str());
  results.push_back({{"name", "export_throughput"}, {"events_per_s", br}, {"baseline_raw_producer", rr},
                     {"ratio", br / rr}, {"rounds", bridge_rates}, {"baseline_rounds", raw_rates}});

  // 2. End-to-end lag, append -> broker acknowledgement, at a fixed append rate.
  {
    auto s = FreshStore(dir);
    std::vector<int64_t> lags;
    lags.reserve(static_cast<size_t>(rate * 3));
    volatile std::sig_atomic_t stop = 0;
    bridge::ExportOptions o;
    o.brokers = mock.bootstraps();
    o.topic = mock.Topic("lag");
    o.subscription = "bench-lag";
    o.properties = {"log_level=0"};
    o.linger_ms = 1;
    o.stop = &stop;
    // The first acknowledged event is a warm-up (connections, producer id); the rest are measured.
    std::atomic<bool> warm{false};
    o.on_acked = [&](uint64_t, int64_t at) {
      if (warm.load(std::memory_order_relaxed)) lags.push_back(clock::WallNanos() - at);
      else warm.store(true, std::memory_order_release);  // partner: the acquire load below
    };
    std::thread exporter([&] { (void)bridge::RunExport(*s, o); });
    Appender ap(*s);
    ap.One(0);
    while (!warm.load(std::memory_order_acquire)) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    const int64_t t0 = clock::MonotonicNanos(), period = 1'000'000'000 / static_cast<int64_t>(rate);
    const uint64_t n = rate * 2;
    for (uint64_t i = 1; i <= n; ++i) {
      while (clock::MonotonicNanos() < t0 + static_cast<int64_t>(i) * period) {
      }
      ap.One(i);
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
    stop = 1;
    exporter.join();
    const double p50 = Percentile(lags, 0.5) / 1e6, p99 = Percentile(lags, 0.99) / 1e6,
                 mx = lags.empty() ? 0 : static_cast<double>(lags.back()) / 1e6;
    std::printf("lag append -> broker ack at %llu events/s (linger.ms=1): p50 %.2f ms  p99 %.2f ms  max %.2f ms (%zu events)\n",
                static_cast<unsigned long long>(rate), p50, p99, mx, lags.size());
    results.push_back({{"name", "export_lag"}, {"rate", rate}, {"p50_ms", p50}, {"p99_ms", p99}, {"max_ms", mx},
                       {"events", lags.size()}});
  }

  // 3. A producer's append rate with the bridge exporting versus alone, interleaved rounds of window_ms.
  // Baseline arm: a thread that only spins, at the bridge's nice value: what any busy neighbour on the other
  // vCPU costs the producer on this machine (2 vCPUs may share one physical core).
  std::vector<double> alone, with, spin;
  for (int r = 0; r < rounds; ++r) {
    for (int bridge_on = 0; bridge_on < 3; ++bridge_on) {
      auto s = FreshStore(dir);
      volatile std::sig_atomic_t stop = 0;
      bridge::ExportOptions o;
      o.brokers = mock.bootstraps();
      o.topic = mock.Topic("cost-" + std::to_string(r));
      o.subscription = "bench-cost";
      o.properties = {"log_level=0"};
      o.stop = &stop;
      std::thread exporter;
      std::atomic<bool> spinning{bridge_on == 2};
      if (bridge_on == 2) {
        exporter = std::thread([&] {
          (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), bridge_nice);
          uint64_t x = 0;
          while (spinning.load(std::memory_order_relaxed)) x = x * 6364136223846793005ull + 1;
          std::printf("%s", x == 42 ? " " : "");  // consume x
        });
      } else if (bridge_on == 1) {
        exporter = std::thread([&] {
          // This thread only (Linux nice is per thread); librdkafka's threads, made in RunExport, inherit it.
          (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), bridge_nice);
          (void)bridge::RunExport(*s, o);
        });
      }
      Appender ap(*s);
      uint64_t n = 0;
      const int64_t t0 = clock::MonotonicNanos(), end = t0 + window_ms * 1'000'000;
      while (clock::MonotonicNanos() < end) ap.One(n++);
      const double rate_now = static_cast<double>(n) / (static_cast<double>(clock::MonotonicNanos() - t0) / 1e9);
      stop = 1;
      spinning.store(false, std::memory_order_relaxed);
      if (exporter.joinable()) exporter.join();
      (bridge_on == 0 ? alone : bridge_on == 1 ? with : spin).push_back(rate_now);
    }
  }
  const double a = Median(alone), w = Median(with), sp = Median(spin);
  std::printf("producer with the bridge running (bridge nice %d, brokers nice %d): %.0f appends/s vs %.0f alone -> "
              "%.2fx (medians of %d interleaved %lld ms rounds)\n",
              bridge_nice, broker_nice, w, a, w / a, rounds, static_cast<long long>(window_ms));
  std::printf("producer beside a thread that only spins (nice %d): %.0f appends/s -> %.2fx of alone; the bridge "
              "costs %.2fx of what any busy neighbour costs\n",
              bridge_nice, sp, sp / a, (a - w) / std::max(1.0, a - sp));
  results.push_back({{"name", "producer_with_bridge"}, {"with_bridge_per_s", w}, {"alone_per_s", a}, {"ratio", w / a},
                     {"bridge_nice", bridge_nice}, {"broker_nice", broker_nice}, {"beside_spinner_per_s", sp}, {"spinner_ratio", sp / a}, {"rounds_spinner", spin}, {"rounds_with", with}, {"rounds_alone", alone}});

  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (!out.empty()) std::ofstream(out) << nlohmann::json{{"results", results}}.dump(2) << "\n";
  return 0;
}
