// Micro-benchmarks of the log: append (pre-encoded, full semantics over 1 M streams, encode + append) and
// read, beside the floor they are judged against: memcpy of the same records into a pre-faulted shared
// mapping. Run through bench/run.sh, which interleaves them over several rounds and prints ratios.
#include <benchmark/benchmark.h>
#include <sys/mman.h>

#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "handlers/envelope.h"
#include "store/event_store.h"
#include "store/subscription.h"

namespace {

using namespace hfe;

// A fresh store in /dev/shm, removed afterwards.
struct BenchStore {
  std::string dir;
  std::unique_ptr<store::EventStore> s;
  explicit BenchStore(uint64_t streams = 1u << 20) {
    char tmpl[] = "/dev/shm/hfe-bench-XXXXXX";
    dir = ::mkdtemp(tmpl);
    store::StoreOptions o;
    o.create_if_missing = true;
    o.segment_size = 256ull << 20;
    o.stream_capacity = streams;
    o.dedup_window = 1u << 20;
    auto r = store::EventStore::Open(dir + "/s", o);
    if (!r.ok()) std::abort();
    s = std::move(*r);
  }
  ~BenchStore() {
    s.reset();
    std::filesystem::remove_all(dir);
  }
};

// The floor: copy 128-byte records into a pre-faulted shared mapping, as the log does, minus everything else.
void BM_MemcpyFloor(benchmark::State& state) {
  const size_t rec = static_cast<size_t>(state.range(0));
  const size_t size = 256u << 20;
  void* m = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  std::vector<uint8_t> src(rec, 0x5a);
  size_t off = 0;
  for (auto _ : state) {
    if (off + rec > size) off = 0;
    std::memcpy(static_cast<uint8_t*>(m) + off, src.data(), rec);
    benchmark::ClobberMemory();
    off += rec;
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(rec));
  ::munmap(m, size);
}
BENCHMARK(BM_MemcpyFloor)->Arg(128);

// Pre-encoded 128-byte events to one stream, expected version Any, dedup on (it always is).
void BM_AppendPreEncoded(benchmark::State& state) {
  BenchStore bs;
  std::vector<uint8_t> payload(static_cast<size_t>(state.range(0)), 0x5a);
  store::EventData ev;
  ev.type = 1;
  ev.payload = payload;
  uint64_t n = 0;
  for (auto _ : state) {
    ev.id = store::EventId{0x1000 + n, ++n};
    auto r = bs.s->Append("request-1", store::ExpectedVersion::Any(), {&ev, 1});
    if (!r.ok()) state.SkipWithError(r.status().message().c_str());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_AppendPreEncoded)->Arg(128)->Unit(benchmark::kNanosecond);

// Batches of 16 pre-encoded events per append: the cost of the commit and resolution amortised.
void BM_AppendBatch16(benchmark::State& state) {
  BenchStore bs;
  std::vector<uint8_t> payload(128, 0x5a);
  store::EventData evs[16];
  for (auto& e : evs) {
    e.type = 1;
    e.payload = payload;
  }
  uint64_t n = 0;
  for (auto _ : state) {
    for (auto& e : evs) e.id = store::EventId{0x2000, ++n};
    auto r = bs.s->Append("request-1", store::ExpectedVersion::Any(), evs);
    if (!r.ok()) state.SkipWithError(r.status().message().c_str());
  }
  state.SetItemsProcessed(state.iterations() * 16);
}
BENCHMARK(BM_AppendBatch16);

// Full semantics: exact expected version on every append, dedup on, round-robin over 1 M distinct streams.
void BM_AppendFullSemantics(benchmark::State& state) {
  const size_t streams = static_cast<size_t>(state.range(0));
  BenchStore bs(streams + streams / 4);
  std::vector<std::string> names(streams);
  for (size_t i = 0; i < streams; ++i) names[i] = "request-" + std::to_string(i);
  std::vector<uint64_t> next(streams, 0);
  std::vector<uint8_t> payload(128, 0x5a);
  store::EventData ev;
  ev.type = 1;
  ev.payload = payload;
  uint64_t n = 0;
  size_t i = 0;
  for (auto _ : state) {
    ev.id = store::EventId{0x3000, ++n};
    store::ExpectedVersion exp = next[i] == 0 ? store::ExpectedVersion::NoStream() : store::ExpectedVersion::Exact(next[i] - 1);
    auto r = bs.s->Append(names[i], exp, {&ev, 1});
    if (!r.ok()) {
      state.SkipWithError(r.status().message().c_str());
      break;
    }
    ++next[i];
    if (++i == streams) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AppendFullSemantics)->Arg(1 << 20);

// Encode a typical RequestCreatedEvent (~128-byte envelope) with FlatBuffers, then append it.
void BM_EncodeAppend(benchmark::State& state) {
  BenchStore bs;
  flatbuffers::FlatBufferBuilder b(512);
  uint64_t n = 0;
  size_t bytes = 0;
  for (auto _ : state) {
    b.Clear();
    auto body = schema::CreateRequestCreatedEventDirect(b, "request-1", schema::RequestType::Provision, "tpl-a", 3, 600);
    handlers::EnvelopeMeta meta;
    meta.event_id = store::EventId{0x4000, ++n};
    meta.stream_id = "request-1";
    meta.stream_type = "request";
    meta.occurred_at_ns = 1;
    store::EventData ev;
    handlers::FinishEnvelope(b, meta, schema::EventBody::RequestCreatedEvent, body.Union(), &ev);
    bytes = ev.payload.size();
    auto r = bs.s->Append("request-1", store::ExpectedVersion::Any(), {&ev, 1});
    if (!r.ok()) state.SkipWithError(r.status().message().c_str());
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["envelope_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_EncodeAppend);

// Fills the store with `total` 128-byte events in batches of 64 over 1000 streams, types cycling 1..3.
void Fill(BenchStore& bs, int64_t total, uint64_t id_hi) {
  std::vector<uint8_t> payload(128, 0x5a);
  store::EventData evs[64];
  uint64_t n = 0;
  for (int64_t k = 0; k < total / 64; ++k) {
    for (auto& e : evs) {
      e.type = 1 + (n % 3);
      e.payload = payload;
      e.id = store::EventId{id_hi, ++n};
    }
    (void)bs.s->Append("request-" + std::to_string(k % 1000), store::ExpectedVersion::Any(), evs);
  }
}

// Reading everything from position 0 (zero-copy views), 1 M events of 128 bytes.
void BM_ReadAll(benchmark::State& state) {
  BenchStore bs;
  const int64_t total = state.range(0);
  Fill(bs, total, 0x5000);
  uint64_t sum = 0;
  store::EventStore::Visitor visit = [&](const store::EventView& v) {
    sum += v.payload[0] + v.type;
    return true;
  };
  for (auto _ : state) {
    if (!bs.s->ReadAll(0, visit).ok()) state.SkipWithError("read failed");
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * total);
}
BENCHMARK(BM_ReadAll)->Arg(1 << 20)->Unit(benchmark::kMillisecond);

// Replay through a subscription with a header filter (one event type in three delivered; no payload decode).
void BM_ReplayFiltered(benchmark::State& state) {
  BenchStore bs;
  const int64_t total = state.range(0);
  Fill(bs, total, 0x6000);
  uint64_t sum = 0;
  store::EventStore::Visitor visit = [&](const store::EventView& v) {
    sum += v.payload[0];
    return true;
  };
  int round = 0;
  for (auto _ : state) {
    store::SubscriptionOptions o;
    o.types = {2};
    auto sub = store::Subscription::Open(*bs.s, "replay-" + std::to_string(round++), o);
    for (;;) {
      auto k = (*sub)->Poll(visit, 4096);
      if (!k.ok() || *k == 0) break;
    }
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * total);
}
BENCHMARK(BM_ReplayFiltered)->Arg(1 << 20)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
