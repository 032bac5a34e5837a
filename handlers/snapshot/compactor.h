// Compactor: one per store (a file lock; a second one is refused), it folds the log into the domain state
// and writes snapshots, so replay and aggregate loading start from the newest snapshot instead of
// position 0. It reads the log like any reader, in place, and never blocks producers.
//
//   auto c = Compactor::Open(store, {.every_events = 1'000'000, .every_ms = 60'000});
//   c->CompactOnce();            // hostfactory compact
//   c->Watch(&stop, report);     // hostfactory compact --watch: every N events or T ms, whichever first
#pragma once

#include <csignal>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "handlers/snapshot/domain_state.h"
#include "store/event_store.h"
#include "store/retention.h"

namespace hfe::handlers {

struct CompactorOptions {
  uint64_t every_events = 1'000'000;  // Watch: a snapshot once this many events were appended since the last
  int64_t every_ms = 60'000;          // Watch: and at least this often while anything was appended
  size_t keep = 3;                    // snapshots kept (older ones are removed after a new one is written)
  bool retire = false;                // after each snapshot, retire the segments it and every cursor are past
  store::RetentionOptions retention;  // the lagging-subscription policy for retirement
};

struct CompactionReport {
  bool written = false;           // false: nothing new since the newest snapshot
  uint64_t position = 0;          // of the snapshot
  uint64_t events = 0;            // folded into it, in all
  uint64_t tail_events = 0;       // folded by this compaction
  size_t requests = 0, machines = 0, templates = 0;
  uint64_t bytes = 0;             // snapshot payload
  int64_t fold_ns = 0, serialize_ns = 0, write_ns = 0;
  std::string path;
  std::vector<std::string> warnings;  // snapshots that were skipped
  std::optional<store::RetentionReport> retention;  // with CompactorOptions::retire
};

class Compactor {
 public:
  // FailedPrecondition when another compactor holds the store's compactor lock.
  static Result<std::unique_ptr<Compactor>> Open(store::EventStore& store, const CompactorOptions& o = {});
  ~Compactor();

  // Folds what was appended since the last snapshot and writes a new one (when there was anything); with
  // `retire`, then retires the segments the snapshot and every durable cursor are past.
  Result<CompactionReport> CompactOnce();
  // Compacts on the triggers until *stop; each compaction's report goes to `report`.
  Status Watch(const volatile std::sig_atomic_t* stop, const std::function<void(const CompactionReport&)>& report);

 private:
  Compactor(store::EventStore& store, const CompactorOptions& o, int lock_fd);
  Result<CompactionReport> Snapshot();  // the fold and the write, without retention
  store::EventStore& store_;
  CompactorOptions o_;
  int lock_fd_;
  std::optional<DomainState> state_;  // kept between compactions: the next one folds only the new tail
};

}  // namespace hfe::handlers
