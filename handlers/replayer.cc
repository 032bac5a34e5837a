// Replayer: scan from the time index, filter on headers, dispatch, drain, report.
#include "handlers/replayer.h"

#include <algorithm>
#include <optional>

#include "ipc/clock.h"

namespace hfe::handlers {

Result<ReplayReport> Replay(store::EventStore& store, const Registry& registry, const ReplayOptions& o) {
  if (o.to_ns < o.from_ns) return InvalidArgument("replay: the end of the time range is before its start");
  std::vector<bool> wanted(256, o.types.empty());
  for (uint32_t t : o.types) {
    if (t >= wanted.size()) return InvalidArgument("replay: event type " + std::to_string(t) + " is out of range");
    wanted[t] = true;
  }
  ReplayReport r;
  Dispatcher dispatcher(store, registry, o.dispatch);
  const uint64_t end = store.ResolvedPosition();  // the log as it is now
  uint64_t first = UINT64_MAX;
  int64_t last_progress = 0;
  const int64_t t0 = clock::MonotonicNanos();
  // The views go on to worker threads: a view scope covers them until the workers are done with them.
  std::optional<store::EventStore::ViewScope> scope(std::in_place, store);
  int64_t scope_since = t0;
  Status st = store.ReadSince(o.from_ns, [&](const store::EventView& v) {
    if (v.position >= end) return false;
    if (o.stop && *o.stop) {
      r.interrupted = true;
      return false;
    }
    if (first == UINT64_MAX) first = v.position;
    ++r.scanned;
    if (v.occurred_at_ns < o.from_ns || v.occurred_at_ns > o.to_ns || v.type >= wanted.size() || !wanted[v.type]) {
      return true;
    }
    dispatcher.Dispatch(v);
    // Drained now and then: bounds what waits in memory, and lets a redaction in between.
    if (++r.replayed % 4096 == 0 && clock::MonotonicNanos() - scope_since > 16'000'000) {
      dispatcher.Drain();
      scope->Renew();
      scope_since = clock::MonotonicNanos();
    } else if (r.replayed % 65536 == 0) {
      dispatcher.Drain();
    }
    if (o.progress) {
      const int64_t now = clock::MonotonicNanos();
      if (now - last_progress > 100'000'000) {
        last_progress = now;
        o.progress(end > first ? std::min(1.0, double(v.position - first) / double(end - first)) : 1.0, r.replayed);
      }
    }
    return true;
  });
  dispatcher.Drain();
  scope.reset();
  Status flushed = dispatcher.Flush();
  if (o.progress) o.progress(1.0, r.replayed);
  HFE_RETURN_IF_ERROR(st);
  HFE_RETURN_IF_ERROR(flushed);
  r.elapsed_ns = clock::MonotonicNanos() - t0;
  r.handlers = dispatcher.Stats();
  return r;
}

}  // namespace hfe::handlers
