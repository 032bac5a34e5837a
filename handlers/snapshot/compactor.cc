// Compactor: the lock, one compaction, the watch loop.
#include "handlers/snapshot/compactor.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <thread>

#include "ipc/clock.h"
#include "ipc/region.h"

namespace hfe::handlers {

Compactor::Compactor(store::EventStore& store, const CompactorOptions& o, int lock_fd)
    : store_(store), o_(o), lock_fd_(lock_fd) {}

Compactor::~Compactor() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

Result<std::unique_ptr<Compactor>> Compactor::Open(store::EventStore& store, const CompactorOptions& o) {
  const std::string path = store.dir() + "/compactor.lock";
  auto fd = ipc::OpenSecure(path, /*create=*/true, 0600);
  if (!fd.ok()) return fd.status();
  if (::flock(*fd, LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = {0};
    ssize_t n = ::pread(*fd, pid, sizeof pid - 1, 0);
    ::close(*fd);
    return FailedPrecondition("another compactor" + (n > 0 ? " (pid " + std::string(pid, static_cast<size_t>(n)) + ")" : std::string()) +
                              " runs for this store; one at a time (stop it, or use `hostfactory compact` after it)");
  }
  // The pid only serves the message of a refused second compactor, so a failed write is not an error.
  const std::string me = std::to_string(::getpid());
  (void)!::ftruncate(*fd, 0);
  (void)!::pwrite(*fd, me.data(), me.size(), 0);
  return std::unique_ptr<Compactor>(new Compactor(store, o, *fd));
}

Result<CompactionReport> Compactor::Snapshot() {
  CompactionReport r;
  const int64_t t0 = clock::MonotonicNanos();
  if (!state_) {
    RebuildReport rb;
    auto s = DomainState::Rebuild(store_, {}, &rb);
    if (!s.ok()) return s.status();
    r.warnings = std::move(rb.warnings);
    r.tail_events = rb.tail_events;
    const bool had_snapshot = rb.snapshot_position != 0;
    state_.emplace(std::move(*s));
    if (had_snapshot && rb.tail_events == 0) {
      r.position = state_->position();
      r.events = state_->events();
      r.path = rb.snapshot_path;
      return r;  // the newest snapshot is current
    }
  } else {
    auto n = state_->CatchUp(store_);
    if (!n.ok()) return n.status();
    r.tail_events = *n;
    if (*n == 0) {
      r.position = state_->position();
      r.events = state_->events();
      return r;
    }
  }
  if (state_->events() == 0) return r;  // an empty log: nothing to snapshot
  const int64_t t1 = clock::MonotonicNanos();
  std::vector<uint8_t> payload = state_->Serialize();
  const int64_t t2 = clock::MonotonicNanos();
  HFE_RETURN_IF_ERROR(store::WriteSnapshot(store_.dir(), state_->position(), SnapshotSchemaHash(), payload));
  const int64_t t3 = clock::MonotonicNanos();
  auto pruned = store::PruneSnapshots(store_.dir(), std::max<size_t>(1, o_.keep));
  if (!pruned.ok()) r.warnings.push_back("pruning old snapshots: " + pruned.status().message());
  // Continue from the snapshot just written: its mapping replaces the overlay, so memory stays bounded.
  auto file = store::SnapshotFile::Open(store::SnapshotPath(store_.dir(), state_->position()), SnapshotSchemaHash());
  if (file.ok()) {
    r.path = (*file)->path();
    auto fresh = DomainState::FromSnapshot(std::move(*file));
    if (fresh.ok()) state_.emplace(std::move(*fresh));
  }
  r.written = true;
  r.position = state_->position();
  r.events = state_->events();
  r.requests = state_->requests();
  r.machines = state_->machines();
  r.templates = state_->templates();
  r.bytes = payload.size();
  r.fold_ns = t1 - t0;
  r.serialize_ns = t2 - t1;
  r.write_ns = t3 - t2;
  return r;
}

Result<CompactionReport> Compactor::CompactOnce() {
  auto r = Snapshot();
  if (!r.ok() || !o_.retire || r->position == 0) return r;
  auto ret = store::RetireSegments(store_, r->position, o_.retention);
  if (!ret.ok()) return ret.status();
  r->retention = std::move(*ret);
  return r;
}

Status Compactor::Watch(const volatile std::sig_atomic_t* stop,
                        const std::function<void(const CompactionReport&)>& report) {
  uint64_t last_events = UINT64_MAX;
  int64_t last_ns = 0;
  while (!*stop) {
    const uint64_t events = store_.Stats().events;
    const int64_t now = clock::MonotonicNanos();
    const bool due_count = last_events == UINT64_MAX || events - last_events >= o_.every_events;
    const bool due_time = events != last_events && now - last_ns >= o_.every_ms * 1'000'000;
    if (due_count || due_time) {
      auto r = CompactOnce();
      if (!r.ok()) return r.status();
      report(*r);
      last_events = events;
      last_ns = now;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return Status::Ok();
}

}  // namespace hfe::handlers
