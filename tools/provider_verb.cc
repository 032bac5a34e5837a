// provider: the command-handling process behind the command bus, with the simulated cloud provider.
//   hostfactory provider [--min-delay-ms A] [--max-delay-ms B] [--fail-rate F] [--seed N] [--no-reconcile]
//                        [--idle-exit-ms M] [--stats-file F]
// It takes commands off `<store>/rings/commands.bus`, acts on them through the aggregates (see
// handlers/workflow/provider.h), and on start takes up requests the log shows still open.
#include <csignal>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "handlers/jsonl_file.h"
#include "handlers/workflow/command_bus.h"
#include "handlers/workflow/provider.h"
#include "ipc/clock.h"
#include "tools/cli_common.h"

namespace hfe::tools {
namespace {

volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

struct ProviderArgs {
  double min_delay_ms = 0.5, max_delay_ms = 5, fail_rate = 0;
  uint64_t seed = 0;
  bool no_reconcile = false;
  int64_t idle_exit_ms = 0;
  std::string stats_file;
};

Status WriteStats(const std::string& path, const handlers::SimulatedProvider& p, const handlers::CommandReceiver& rx,
                  bool final) {
  const auto& s = p.stats();
  nlohmann::json j{{"pid", ::getpid()},
                   {"final", final},
                   {"updated_at", clock::FormatIso8601(clock::WallNanos())},
                   {"commands", s.commands},
                   {"rejected", s.rejected},
                   {"invalid_on_bus", rx.rejected()},
                   {"already_done", s.already_done},
                   {"conflicts", s.conflicts},
                   {"reconciled", s.reconciled},
                   {"requests_in_flight", p.requests_in_flight()},
                   {"requests", {{"started", s.requests_started}, {"completed", s.requests_completed},
                                 {"partial", s.requests_partial}, {"failed", s.requests_failed}}},
                   {"machines", {{"created", s.machines_created}, {"provisioned", s.machines_provisioned},
                                 {"failed", s.machines_failed}, {"terminated", s.machines_terminated},
                                 {"monitored", p.monitored()}}},
                   {"health_checks", s.health_checks},
                   {"resources_cleaned", s.resources_cleaned},
                   {"confirmations", s.confirmations},
                   {"last_error", s.last_error}};
  return handlers::WriteFileAtomically(path, j.dump() + "\n");
}

int RunProvider(const GlobalOptions& g, const ProviderArgs& a) {
  if (a.min_delay_ms < 0 || a.max_delay_ms < a.min_delay_ms) {
    return Fail("--min-delay-ms and --max-delay-ms: expected 0 <= min <= max, found " + std::to_string(a.min_delay_ms) +
                " and " + std::to_string(a.max_delay_ms));
  }
  if (a.fail_rate < 0 || a.fail_rate > 1) return Fail("--fail-rate: expected 0..1, found " + std::to_string(a.fail_rate));
  auto s = OpenStore(g, false);
  if (!s.ok()) return Fail(s.status());
  auto rx = handlers::CommandReceiver::Open((*s)->dir());
  if (!rx.ok()) return Fail(rx.status());
  handlers::ProviderOptions po;
  po.min_delay_us = static_cast<int64_t>(a.min_delay_ms * 1000);
  po.max_delay_us = static_cast<int64_t>(a.max_delay_ms * 1000);
  po.fail_rate = a.fail_rate;
  po.seed = a.seed;
  handlers::SimulatedProvider provider(**s, po);
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  if (!a.no_reconcile) {
    auto n = provider.Reconcile();
    if (!n.ok()) return Fail(n.status());
    if (*n) std::fprintf(stderr, "provider: took up %zu open request(s) from the log\n", *n);
  }
  uint64_t reported_errors = 0;
  auto report = [&](const Status& st) {
    if (st.ok()) return;
    if (++reported_errors <= 20) std::fprintf(stderr, "provider: %s\n", provider.stats().last_error.c_str());
    if (reported_errors == 20) std::fprintf(stderr, "provider: further errors are counted in the stats only\n");
  };
  int64_t idle_since = clock::MonotonicNanos(), last_stats = 0;
  while (!g_stop) {
    size_t n = (*rx)->Receive([&](const schema::Command& c) { report(provider.Execute(c)); }, 256);
    int64_t now = clock::MonotonicNanos();
    report(provider.Tick(now));
    if (!a.stats_file.empty() && now - last_stats > 200'000'000) {
      last_stats = now;
      if (Status w = WriteStats(a.stats_file, provider, **rx, false); !w.ok()) return Fail(w);
    }
    if (n > 0 || provider.requests_in_flight() > 0) idle_since = now;
    if (n > 0) continue;
    if (a.idle_exit_ms > 0 && now - idle_since > a.idle_exit_ms * 1'000'000) break;
    int64_t wait = std::min<int64_t>(100'000'000, provider.NextDueNs() - now);
    if (wait > 0) (*rx)->Wait(wait);
  }
  if (!a.stats_file.empty()) {
    if (Status w = WriteStats(a.stats_file, provider, **rx, true); !w.ok()) return Fail(w);
  }
  const auto& st = provider.stats();
  std::fprintf(stderr,
               "provider: %llu requests completed, %llu partial, %llu failed; %llu machines provisioned, %llu failed; "
               "%llu commands rejected\n",
               static_cast<unsigned long long>(st.requests_completed), static_cast<unsigned long long>(st.requests_partial),
               static_cast<unsigned long long>(st.requests_failed), static_cast<unsigned long long>(st.machines_provisioned),
               static_cast<unsigned long long>(st.machines_failed), static_cast<unsigned long long>(st.rejected));
  return 0;
}

}  // namespace

void AddProviderVerb(CLI::App& app, GlobalOptions& g, int& rc) {
  auto a = std::make_shared<ProviderArgs>();
  auto* p = app.add_subcommand("provider", "run the command handler: a simulated cloud provider serving the command bus");
  p->add_option("--min-delay-ms", a->min_delay_ms, "shortest provisioning delay of a machine")->capture_default_str();
  p->add_option("--max-delay-ms", a->max_delay_ms, "longest provisioning delay of a machine")->capture_default_str();
  p->add_option("--fail-rate", a->fail_rate, "share of machines whose provisioning fails (0..1)")->capture_default_str();
  p->add_option("--seed", a->seed, "random seed (0: from the kernel)");
  p->add_flag("--no-reconcile", a->no_reconcile, "do not take up requests the log shows still open");
  p->add_option("--idle-exit-ms", a->idle_exit_ms, "exit after this long without commands or work (0: never)");
  p->add_option("--stats-file", a->stats_file, "keep the provider's stats in this JSON file");
  p->callback([&g, &rc, a] { rc = RunProvider(g, *a); });
}

}  // namespace hfe::tools
