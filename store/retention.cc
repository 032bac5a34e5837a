// Retention: the retention point, the lag policy, and retiring segments (first_segment, unlink, unmap).
#include "store/retention.h"

#include <unistd.h>

#include <algorithm>

#include "ipc/liveness.h"
#include "store/consumer_group.h"
#include "store/internal/admin_lock.h"
#include "store/internal/log.h"
#include "store/subscription.h"

namespace hfe::store {

using namespace format;

Result<uint64_t> Log::RetireBefore(uint64_t position) {
  internal::AdminLock lock(dir_);
  std::atomic_ref<uint64_t> first(ctl_->first_segment);
  const uint64_t old_first = first.load(std::memory_order_acquire);
  // Whole segments before `position`, and never the one holding the resolved watermark.
  const uint64_t target = std::min(position, resolved()) / seg_size_;
  if (target <= old_first) return uint64_t{0};
  // Release: a reader that sees the new first segment finds no reason to map the older ones.
  first.store(target, std::memory_order_release);
  for (uint64_t k = old_first; k < target; ++k) ::unlink(SegmentPath(k).c_str());
  ReleaseRetired();
  return target - old_first;
}

void Log::ReleaseRetired() const {
  const uint64_t first = std::atomic_ref<uint64_t>(ctl_->first_segment).load(std::memory_order_acquire);
  std::lock_guard<std::mutex> lock(map_mu_);
  for (auto& slot : map_slots_) {
    const SegmentNode* node = slot.load(std::memory_order_relaxed);
    if (node && node->index < first) slot.store(nullptr, std::memory_order_release);
  }
  // Unmaps them; their nodes stay (a racing lookup may hold one), so no pointer read here dangles.
  mapped_.erase(mapped_.begin(), mapped_.lower_bound(first));
}

Result<RetentionReport> RetireSegments(EventStore& store, uint64_t snapshot_position, const RetentionOptions& o) {
  RetentionReport r;
  Log& log = store.log();
  const uint64_t end = store.ResolvedPosition();
  uint64_t point = snapshot_position;
  r.held_by = "the newest snapshot (position " + std::to_string(snapshot_position) + ")";
  auto subs = Subscription::List(store);
  if (!subs.ok()) return subs.status();
  for (const auto& s : *subs) {
    uint64_t cursor = s.cursor;
    bool alive = s.member_alive;
    if (s.group) {
      auto gi = GroupMember::Info(store, s.name);
      if (!gi.ok()) return gi.status();
      cursor = gi->cursor;
      alive = gi->members > 0;
    }
    const uint64_t lag = end > cursor ? end - cursor : 0;
    if (o.max_lag_bytes > 0 && lag > o.max_lag_bytes) {
      const std::string why = "subscription \"" + s.name + "\" is " + std::to_string(lag) + " bytes behind (limit " +
                              std::to_string(o.max_lag_bytes) + ")";
      if (o.lagging == RetentionOptions::Lagging::kDrop && !s.group && !alive) {
        Status st = Subscription::Delete(store, s.name);
        if (st.ok()) {
          r.dropped.push_back(why + ": dropped, its unacknowledged events will be retired");
          continue;
        }
        r.holding.push_back(why + ": could not be dropped (" + st.message() + "); it holds its segments");
      } else {
        r.holding.push_back(why + (s.group ? ": a consumer group; it holds its segments"
                                           : alive && o.lagging == RetentionOptions::Lagging::kDrop
                                                 ? ": a live process is attached; it holds its segments"
                                                 : ": held (policy hold)"));
      }
    }
    if (cursor < point) {
      point = cursor;
      r.held_by = "subscription \"" + s.name + "\" (cursor " + std::to_string(cursor) + ")";
    }
  }
  r.retain_from = point;
  auto n = log.RetireBefore(point);
  if (!n.ok()) return n.status();
  r.segments_retired = *n;
  r.bytes_freed = *n * log.segment_size();
  r.first_segment = store.Stats().first_segment;
  return r;
}

void EventStore::ReleaseRetired() const { log_->ReleaseRetired(); }

}  // namespace hfe::store
