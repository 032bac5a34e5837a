// Handler micro-benchmarks: the cost of one event in the audit and metrics handlers, beside a floor measured
// in the same run (one write(2) of a line of the audit entry's size to a tmpfs file). Events are a request
// lifecycle mix encoded once; every handler call sees a distinct position.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "handlers/aggregates/machine.h"
#include "handlers/aggregates/request.h"
#include "handlers/audit/audit_handler.h"
#include "handlers/envelope.h"
#include "handlers/monitoring/metrics_handler.h"

namespace {

using namespace hfe;

struct Fixture {
  std::string dir;
  std::vector<std::vector<uint8_t>> payloads;
  std::vector<uint32_t> types;
  Fixture() {
    char tmpl[] = "/dev/shm/hfe-hbench-XXXXXX";
    dir = ::mkdtemp(tmpl);
    auto r = handlers::aggregates::Request::Create("request-3f1c2b7e-0d4a-4c55-9a61-2b8d7f0e9c11", "template-1", 2);
    (void)r->StartProvisioning();
    (void)r->Complete({"machine-3f1c2b7e-0d4a-4c55-9a61-2b8d7f0e9c11-0", "machine-3f1c2b7e-0d4a-4c55-9a61-2b8d7f0e9c11-1"});
    auto m = handlers::aggregates::Machine::Create("machine-3f1c2b7e-0d4a-4c55-9a61-2b8d7f0e9c11-0", "template-1",
                                                  "request-3f1c2b7e-0d4a-4c55-9a61-2b8d7f0e9c11", "m5.large");
    (void)m->Provision("i-123456789", "10.1.2.3", "");
    for (const auto* agg : {static_cast<const handlers::aggregates::AggregateRoot*>(&*r),
                            static_cast<const handlers::aggregates::AggregateRoot*>(&*m)}) {
      for (const auto& p : agg->pending()) {
        payloads.push_back(p.payload);
        types.push_back(static_cast<uint32_t>(p.type));
      }
    }
  }
  ~Fixture() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

template <typename H>
void RunHandler(benchmark::State& state, H& h, Fixture& f) {
  uint64_t pos = 1;
  size_t i = 0;
  store::EventView v;
  v.stream = "request-3f1c2b7e-0d4a-4c55-9a61-2b8d7f0e9c11";
  v.id = store::EventId::Random();
  for (auto _ : state) {
    v.position = pos;
    pos += 64;
    v.type = f.types[i];
    v.payload = f.payloads[i];
    const schema::Envelope* env = handlers::VerifiedEnvelope(v.payload);
    handlers::Event e{v, *env, handlers::EventTypeName(v.type)};
    if (!h.Handle(e).ok()) state.SkipWithError("handler failed");
    if (++i == f.payloads.size()) i = 0;
  }
  (void)h.Flush();
  state.SetItemsProcessed(state.iterations());
}

void BM_AuditHandler(benchmark::State& state) {
  Fixture f;
  auto audit = handlers::AuditHandler::Open({f.dir + "/audit.jsonl"});
  if (!audit.ok()) return state.SkipWithError("open");
  RunHandler(state, **audit, f);
}
BENCHMARK(BM_AuditHandler);

void BM_MetricsHandler(benchmark::State& state) {
  Fixture f;
  handlers::MetricsOptions o;
  o.path = f.dir + "/metrics.prom";
  auto m = handlers::MetricsHandler::Open(o);
  if (!m.ok()) return state.SkipWithError("open");
  RunHandler(state, **m, f);
}
BENCHMARK(BM_MetricsHandler);

// Floor: one write(2) per event of a line the size of an audit entry, to a tmpfs file.
void BM_WriteLineFloor(benchmark::State& state) {
  Fixture f;
  int fd = ::open((f.dir + "/floor.jsonl").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  std::string line(400, 'x');
  line.back() = '\n';
  for (auto _ : state) benchmark::DoNotOptimize(::write(fd, line.data(), line.size()));
  ::close(fd);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_WriteLineFloor);

}  // namespace

BENCHMARK_MAIN();
