// compact: write a snapshot now, or run as the store's compactor (--watch).
// aggregate: one aggregate's state, rebuilt from the newest snapshot plus its stream's tail, or from the log.
//   hostfactory compact [--watch] [--every-events N] [--every-seconds T] [--keep K]
//                       [--retire [--max-lag-mb M] [--lagging hold|drop]]
//   hostfactory aggregate --stream S [--no-snapshot]
#include <csignal>
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "handlers/envelope.h"
#include "handlers/snapshot/compactor.h"
#include "handlers/snapshot/domain_state.h"
#include "ipc/clock.h"
#include "tools/cli_common.h"

namespace hfe::tools {
namespace {

volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

struct CompactArgs {
  bool watch = false;
  bool retire = false;
  double max_lag_mb = 0;
  std::string lagging = "hold";
  uint64_t every_events = 1'000'000;
  double every_seconds = 60;
  size_t keep = 3;
};

nlohmann::json ReportJson(const handlers::CompactionReport& r) {
  return {{"written", r.written},          {"position", r.position},       {"events", r.events},
          {"tail_events", r.tail_events},  {"requests", r.requests},       {"machines", r.machines},
          {"templates", r.templates},      {"bytes", r.bytes},             {"fold_ms", r.fold_ns / 1e6},
          {"serialize_ms", r.serialize_ns / 1e6}, {"write_ms", r.write_ns / 1e6}, {"path", r.path},
          {"warnings", r.warnings}, {"retention", r.retention ? nlohmann::json{
              {"retain_from", r.retention->retain_from}, {"first_segment", r.retention->first_segment},
              {"segments_retired", r.retention->segments_retired}, {"bytes_freed", r.retention->bytes_freed},
              {"held_by", r.retention->held_by}, {"dropped", r.retention->dropped},
              {"holding", r.retention->holding}} : nlohmann::json(nullptr)}};
}

void Print(const GlobalOptions& g, const handlers::CompactionReport& r) {
  for (const auto& w : r.warnings) std::fprintf(stderr, "hostfactory: warning: %s\n", w.c_str());
  if (g.json) {
    std::cout << ReportJson(r).dump() << std::endl;
  } else if (!r.written) {
    std::printf("snapshot current at position %llu (%llu events); nothing new to fold\n",
                static_cast<unsigned long long>(r.position), static_cast<unsigned long long>(r.events));
  } else {
    std::printf("snapshot at position %llu: %llu events (%llu new), %zu requests, %zu machines, %zu templates, "
                "%.1f KiB; fold %.1f ms, serialize %.1f ms, write %.1f ms -> %s\n",
                static_cast<unsigned long long>(r.position), static_cast<unsigned long long>(r.events),
                static_cast<unsigned long long>(r.tail_events), r.requests, r.machines, r.templates, r.bytes / 1024.0,
                r.fold_ns / 1e6, r.serialize_ns / 1e6, r.write_ns / 1e6, r.path.c_str());
    std::fflush(stdout);
  }
  if (r.retention && !g.json) {
    for (const auto& d : r.retention->dropped) std::fprintf(stderr, "hostfactory: retention: %s\n", d.c_str());
    for (const auto& h : r.retention->holding) std::fprintf(stderr, "hostfactory: retention: %s\n", h.c_str());
    std::printf("retention: %llu segment(s) retired (%.1f MiB), oldest segment now %llu; held by %s\n",
                static_cast<unsigned long long>(r.retention->segments_retired), r.retention->bytes_freed / 1048576.0,
                static_cast<unsigned long long>(r.retention->first_segment), r.retention->held_by.c_str());
    std::fflush(stdout);
  }
}

int Compact(const GlobalOptions& g, const CompactArgs& a) {
  if (a.every_events == 0 || a.every_seconds <= 0 || a.keep == 0 || a.max_lag_mb < 0) {
    return Fail("--every-events, --every-seconds and --keep must be positive, --max-lag-mb at least 0");
  }
  auto s = OpenStore(g, false);
  if (!s.ok()) return Fail(s.status());
  handlers::CompactorOptions o;
  o.every_events = a.every_events;
  o.every_ms = static_cast<int64_t>(a.every_seconds * 1000);
  o.keep = a.keep;
  o.retire = a.retire;
  o.retention.max_lag_bytes = static_cast<uint64_t>(a.max_lag_mb * 1048576);
  o.retention.lagging = a.lagging == "drop" ? store::RetentionOptions::Lagging::kDrop : store::RetentionOptions::Lagging::kHold;
  auto c = handlers::Compactor::Open(**s, o);
  if (!c.ok()) return Fail(c.status());
  if (!a.watch) {
    auto r = (*c)->CompactOnce();
    if (!r.ok()) return Fail(r.status());
    Print(g, *r);
    return 0;
  }
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  Status st = (*c)->Watch(&g_stop, [&](const handlers::CompactionReport& r) { Print(g, r); });
  return st.ok() ? 0 : Fail(st);
}

nlohmann::json KeyValuesJson(const handlers::aggregates::KeyValues& kv) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : kv) j[k] = v;
  return j;
}

int Aggregate(const GlobalOptions& g, const std::string& stream, bool no_snapshot) {
  if (Status st = CheckStreamOption(stream); !st.ok()) return Fail(st);
  auto s = OpenStore(g, false);
  if (!s.ok()) return Fail(s.status());
  uint32_t first_type = 0;
  Status st = (*s)->ReadStream(stream, 0, [&](const store::EventView& v) {
    first_type = v.type;
    return false;
  });
  if (!st.ok()) return Fail(st);
  if (first_type == 0) return Fail("no stream \"" + stream + "\" in the store (`hostfactory read --last 20` lists recent ones)");
  using schema::EventBody;
  const auto family = first_type <= static_cast<uint32_t>(EventBody::RequestTimeoutEvent)    ? "request"
                      : first_type <= static_cast<uint32_t>(EventBody::MachineHealthCheckEvent) ? "machine"
                      : first_type <= static_cast<uint32_t>(EventBody::TemplateDeletedEvent)    ? "template"
                                                                                                 : "";
  if (!*family) {
    return Fail("stream \"" + stream + "\" starts with a " + std::string(handlers::EventTypeName(first_type) ? handlers::EventTypeName(first_type) : "?") +
                ", not a request, machine or template event; it has no aggregate (read it with `hostfactory read`)");
  }
  std::optional<handlers::DomainState> snap;
  std::vector<std::string> warnings;
  std::string source = "log";
  if (!no_snapshot) {
    auto file = store::SnapshotFile::NewestValid((*s)->dir(), handlers::SnapshotSchemaHash(), &warnings);
    if (!file.ok()) return Fail(file.status());
    if (*file) {
      auto d = handlers::DomainState::FromSnapshot(std::move(*file));
      if (d.ok()) snap.emplace(std::move(*d));
      else warnings.push_back(d.status().message() + "; ignored");
    }
  }
  for (const auto& w : warnings) std::fprintf(stderr, "hostfactory: warning: %s\n", w.c_str());
  const handlers::DomainState* base = snap ? &*snap : nullptr;
  nlohmann::json j{{"stream", stream}, {"aggregate", family}};
  uint64_t from_version = 0;
  bool in_snapshot = false;
  // Where the snapshot's state of this aggregate ends (its tail is read from there).
  auto note = [&](const auto& found) {
    if (!found) return;
    in_snapshot = true;
    from_version = *found->version() + 1;
  };
  const int64_t t0 = clock::MonotonicNanos();
  if (std::string_view(family) == "request") {
    if (base) note(base->FindRequest(stream));
    auto r = handlers::LoadRequest(**s, base, stream);
    if (!r.ok()) return Fail(r.status());
    j.update({{"version", *r->version()}, {"status", handlers::aggregates::RequestStatusName(r->status())},
              {"outward_status", r->outward_status()}, {"template_id", r->template_id()},
              {"machine_count", r->machine_count()}, {"machine_ids", r->machine_ids()}, {"error", r->error()},
              {"tags", KeyValuesJson(r->tags())}, {"created_at", clock::FormatIso8601(r->created_at_ns())}});
  } else if (std::string_view(family) == "machine") {
    if (base) note(base->FindMachine(stream));
    auto m = handlers::LoadMachine(**s, base, stream);
    if (!m.ok()) return Fail(m.status());
    j.update({{"version", *m->version()}, {"status", handlers::aggregates::MachineStatusName(m->status())},
              {"outward_result", m->outward_result()}, {"request_id", m->request_id()},
              {"template_id", m->template_id()}, {"instance_id", m->instance_id()}, {"private_ip", m->private_ip()},
              {"public_ip", m->public_ip()}, {"health", m->health()}});
  } else {
    if (base) note(base->FindTemplate(stream));
    auto t = handlers::LoadTemplate(**s, base, stream);
    if (!t.ok()) return Fail(t.status());
    j.update({{"version", *t->version()}, {"name", t->name()}, {"validation", t->validation()},
              {"configuration", KeyValuesJson(t->configuration())}, {"template_version", t->template_version()},
              {"deleted", t->deleted()}});
  }
  const uint64_t version = j["version"].get<uint64_t>();
  j["rebuilt_from"] = in_snapshot ? "snapshot at position " + std::to_string(snap->position()) + " + " +
                                        std::to_string(version + 1 - from_version) + " event(s) of the stream"
                                  : std::string(no_snapshot ? "the log (--no-snapshot)" : "the log (not in a snapshot)");
  j["rebuild_us"] = (clock::MonotonicNanos() - t0) / 1000;
  if (g.json) {
    std::cout << j.dump() << "\n";
  } else {
    std::cout << j.dump(2) << "\n";
  }
  return 0;
}

}  // namespace

void AddSnapshotVerbs(CLI::App& app, GlobalOptions& g, int& rc) {
  auto a = std::make_shared<CompactArgs>();
  auto* c = app.add_subcommand("compact", "write a snapshot of the domain state now, or run as the compactor (--watch)");
  c->add_flag("--watch", a->watch, "keep running: a snapshot every --every-events events or --every-seconds");
  c->add_option("--every-events", a->every_events, "with --watch: events appended between snapshots")->capture_default_str();
  c->add_option("--every-seconds", a->every_seconds, "with --watch: at least this often while events arrive")
      ->capture_default_str();
  c->add_option("--keep", a->keep, "snapshots kept")->capture_default_str();
  c->add_flag("--retire", a->retire, "after each snapshot, retire (unlink) segments it and every subscription cursor are past");
  c->add_option("--max-lag-mb", a->max_lag_mb, "with --retire: a subscription further behind is lagging (0: never)");
  c->add_option("--lagging", a->lagging, "with --retire: hold a lagging subscription's segments, or drop it when detached")
      ->check(CLI::IsMember({"hold", "drop"}))
      ->capture_default_str();
  c->callback([&g, &rc, a] { rc = Compact(g, *a); });
  auto stream = std::make_shared<std::string>();
  auto no_snapshot = std::make_shared<bool>(false);
  auto* ag = app.add_subcommand("aggregate", "an aggregate's state: newest snapshot + its stream's tail (or the log)");
  ag->add_option("--stream", *stream, "the aggregate's stream (request-..., machine-..., template-...)")->required();
  ag->add_flag("--no-snapshot", *no_snapshot, "rebuild from the log alone (position 0)");
  ag->callback([&g, &rc, stream, no_snapshot] { rc = Aggregate(g, *stream, *no_snapshot); });
}

}  // namespace hfe::tools
