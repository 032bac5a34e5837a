// HandlerHost: poll, dispatch, acknowledge, flush when idle, report.
#include "handlers/host.h"

#include <unistd.h>

#include <cstdio>
#include <optional>
#include <nlohmann/json.hpp>

#include "handlers/jsonl_file.h"
#include "ipc/clock.h"
#include "store/consumer_group.h"

namespace hfe::handlers {

namespace {
// How long the reading thread keeps one view scope while events keep coming.
constexpr int64_t kViewScopeNs = 16'000'000;
}  // namespace

struct HostState {
  store::EventStore* store = nullptr;
  HostOptions o;
  std::string owner;
  std::unique_ptr<store::Subscription> sub;
  std::unique_ptr<store::GroupMember> member;
  std::unique_ptr<Dispatcher> dispatcher;
  uint64_t dispatched = 0;
  int64_t started_ns = 0;
  uint64_t first_segment_seen = 0;
};

HandlerHost::HandlerHost(std::unique_ptr<HostState> s) : s_(std::move(s)) {}
HandlerHost::~HandlerHost() = default;

Result<std::unique_ptr<HandlerHost>> HandlerHost::Open(store::EventStore& store, const Registry& registry,
                                                       const HostOptions& o) {
  if (o.subscription.empty()) return InvalidArgument("a handler host needs a subscription name");
  if (registry.handlers().empty()) return InvalidArgument("a handler host needs at least one handler");
  auto s = std::make_unique<HostState>();
  s->store = &store;
  s->o = o;
  if (o.group.empty()) {
    s->owner = o.subscription;
    auto r = store::Subscription::Open(store, o.subscription, o.filter);
    if (!r.ok()) return r.status();
    s->sub = std::move(*r);
  } else {
    s->owner = o.subscription + "@" + o.group;
    store::GroupOptions go;
    go.types = o.filter.types;
    go.stream_prefix = o.filter.stream_prefix;
    go.start = o.filter.start;
    go.position = o.filter.position;
    go.timestamp_ns = o.filter.timestamp_ns;
    auto r = store::GroupMember::Join(store, s->owner, go);
    if (!r.ok()) return r.status();
    s->member = std::move(*r);
  }
  DispatcherOptions d = o.dispatch;
  if (d.parking_owner.empty() || d.parking_owner == DispatcherOptions{}.parking_owner) d.parking_owner = s->owner;
  s->dispatcher = std::make_unique<Dispatcher>(store, registry, d);
  s->started_ns = clock::WallNanos();
  return std::unique_ptr<HandlerHost>(new HandlerHost(std::move(s)));
}

Status HandlerHost::Run(const volatile std::sig_atomic_t* stop) {
  HostState& s = *s_;
  Dispatcher& dispatcher = *s.dispatcher;
  const uint64_t limit = s.o.max_events;
  // Acknowledge only as far as every handler finished and made its effects durable (at-least-once; each
  // handler's checkpoint drops what it already applied when the rest is delivered again).
  auto ack = [&] {
    if (!s.sub) return;
    uint64_t done = dispatcher.CompletedThrough();
    if (done > 0) s.sub->Ack(done - 1);
  };
  store::EventStore::Visitor visit = [&](const store::EventView& e) {
    if (limit != 0 && s.dispatched >= limit) return false;  // left for the next run
    dispatcher.Dispatch(e);
    ++s.dispatched;
    return true;
  };
  auto member_visit = [&](const store::EventView& e) {
    if (!visit(e)) return Status(StatusCode::kUnavailable, "event limit reached");
    dispatcher.Drain();  // a group member acknowledges each event as its handler returns
    return Status::Ok();
  };
  int64_t last_second = clock::MonotonicNanos(), last_stats = 0, idle_since = last_second;
  // Views go on to the worker threads after Poll returns: a view scope covers them until the workers are
  // done (Drain), renewed every few milliseconds and left while idle, so a redaction waits at most that long.
  // A group member drains each event inside its poll, which holds the views itself.
  std::optional<store::EventStore::ViewScope> scope;
  int64_t scope_since = 0;
  Status result;
  while (!*stop) {
    size_t budget = limit ? std::min<uint64_t>(256, limit - s.dispatched) : 256;
    if (s.sub && !scope) {
      scope.emplace(*s.store);
      scope_since = clock::MonotonicNanos();
    }
    Result<size_t> n = s.sub ? s.sub->Poll(visit, budget) : s.member->Poll(member_visit, budget);
    if (!n.ok()) {
      result = n.status();
      break;
    }
    ack();
    const int64_t now = clock::MonotonicNanos();
    if (now - last_second >= 1'000'000'000) {
      last_second = now;
      if (s.o.every_second) s.o.every_second();
    }
    if (!s.o.stats_path.empty() && now - last_stats >= s.o.stats_interval_ms * 1'000'000) {
      last_stats = now;
      if (Status w = WriteStats(false); !w.ok()) {
        result = w;
        break;
      }
    }
    if (limit && s.dispatched >= limit) break;
    if (*n > 0) {
      idle_since = now;
      if (scope && now - scope_since > kViewScopeNs) {
        dispatcher.Drain();
        scope->Renew();
        scope_since = now;
      }
      continue;
    }
    dispatcher.Drain();
    scope.reset();
    // Idle: let the handlers make what they hold durable, so the acknowledgement catches up.
    if (Status f = dispatcher.Flush(); !f.ok()) {
      result = f;
      break;
    }
    ack();
    // Segments retention retired are unmapped here too (tmpfs frees them once every process has): this
    // host holds no view below its cursor, and retention never passes a cursor.
    if (const uint64_t first = s.store->Stats().first_segment; first != s.first_segment_seen) {
      s.first_segment_seen = first;
      s.store->ReleaseRetired();
    }
    // A group member is idle only while its whole group is: until then the work of a member that died or
    // went silent may still come to it.
    if (s.member && !s.member->CaughtUp()) idle_since = now;
    if (s.o.idle_exit_ms > 0 && now - idle_since > s.o.idle_exit_ms * 1'000'000) break;
    if (s.sub) s.sub->Wait(100'000'000);
    else s.member->Wait(1'000'000);
  }
  dispatcher.Drain();
  scope.reset();
  Status f = dispatcher.Flush();
  ack();
  if (!s.o.stats_path.empty()) {
    Status w = WriteStats(true);
    if (result.ok()) result = w;
  }
  if (result.ok()) result = f;
  return result;
}

uint64_t HandlerHost::dispatched() const { return s_->dispatched; }
std::vector<HandlerStats> HandlerHost::Stats() const { return s_->dispatcher->Stats(); }
const std::string& HandlerHost::owner() const { return s_->owner; }

Status HandlerHost::WriteStats(bool final) {
  HostState& s = *s_;
  nlohmann::json handlers = nlohmann::json::array();
  for (const auto& h : s.dispatcher->Stats()) {
    handlers.push_back({{"handler", h.handler},
                        {"processed", h.processed},
                        {"failed", h.failed},
                        {"retried", h.retried},
                        {"parked", h.parked},
                        {"skipped", h.skipped},
                        {"success_rate", h.success_rate},
                        {"latency_p50_ns", h.latency_p50_ns},
                        {"latency_p99_ns", h.latency_p99_ns},
                        {"latency_max_ns", h.latency_max_ns},
                        {"processed_by_type", h.processed_by_type}});
  }
  nlohmann::json j{{"pid", ::getpid()},
                   {"owner", s.owner},
                   {"dispatched", s.dispatched},
                   {"completed_through", s.dispatcher->CompletedThrough()},
                   {"resolved", s.store->ResolvedPosition()},
                   {"started_at", clock::FormatIso8601(s.started_ns)},
                   {"updated_at", clock::FormatIso8601(clock::WallNanos())},
                   {"final", final},
                   {"handlers", handlers}};
  return WriteFileAtomically(s.o.stats_path, j.dump() + "\n");
}

}  // namespace hfe::handlers
