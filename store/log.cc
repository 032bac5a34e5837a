// Log: opening and creating a store (handshake, lock, geometry checks), segment mappings, stats, sync.
#include "store/internal/log.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "ipc/clock.h"
#include "ipc/liveness.h"

namespace hfe::store {

using namespace format;

namespace {

bool IsPow2(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }
uint64_t NextPow2(uint64_t v) {
  uint64_t p = 1;
  while (p < v) p <<= 1;
  return p;
}

}  // namespace

Log::~Log() {
  stop_sync_.store(true, std::memory_order_relaxed);
  if (sync_thread_.joinable()) sync_thread_.join();
  {
    std::lock_guard<std::mutex> lock(prepare_mu_);
    stop_prepare_ = true;
    stop_prepare_flag_.store(true, std::memory_order_relaxed);
  }
  prepare_cv_.notify_all();
  if (prepare_thread_.joinable()) prepare_thread_.join();
  MarkCleanIfLast();
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the shared lock
}

std::string Log::SegmentPath(uint64_t index) const {
  char name[64];
  std::snprintf(name, sizeof name, "/segments/%016" PRIx64 ".log", index);
  return dir_ + name;
}

Result<std::unique_ptr<Log>> Log::Open(const std::string& dir, const StoreOptions& o) {
  std::unique_ptr<Log> log(new Log());
  log->dir_ = dir;
  while (log->dir_.size() > 1 && log->dir_.back() == '/') log->dir_.pop_back();
  log->options_ = o;
  HFE_RETURN_IF_ERROR(ipc::EnsureDirectory(log->dir_, o.create_if_missing, 0700 | (o.mode & 0070)));

  // Every attached process holds a shared flock on `lock` for as long as it is attached. Opens are serialised
  // by an exclusive flock on `open.lock`; an opener that then gets `lock` exclusively is alone, so it may
  // create the store or repair what dead processes left. (flock does not convert a lock atomically: without
  // the serialisation, a second opener could take `lock` exclusively in the gap while the first converts
  // to shared and already appends, and would "recover" under a live writer.)
  auto open_fd = ipc::OpenSecure(log->dir_ + "/open.lock", /*create=*/true, o.mode);
  if (!open_fd.ok()) return open_fd.status();
  struct OpenLock {
    int fd;
    ~OpenLock() { ::close(fd); }
  } open_lock{*open_fd};
  if (::flock(open_lock.fd, LOCK_EX) != 0) return ErrnoStatus("flock '" + log->dir_ + "/open.lock'", errno);
  auto lock_fd = ipc::OpenSecure(log->dir_ + "/lock", /*create=*/true, o.mode);
  if (!lock_fd.ok()) return lock_fd.status();
  log->lock_fd_ = *lock_fd;
  bool alone = ::flock(log->lock_fd_, LOCK_EX | LOCK_NB) == 0;
  if (!alone && ::flock(log->lock_fd_, LOCK_SH) != 0) return ErrnoStatus("flock '" + log->dir_ + "/lock'", errno);

  std::string control = log->dir_ + "/control.hfe";
  struct stat st;
  bool exists = ::lstat(control.c_str(), &st) == 0;
  if (!exists && !o.create_if_missing) {
    return NotFound("no store at '" + log->dir_ + "' (no control.hfe); create it first (publish creates it)");
  }
  if (!exists && alone) {
    HFE_RETURN_IF_ERROR(log->Create(o));
  } else {
    HFE_RETURN_IF_ERROR(log->Attach(o));
  }
  log->on_disk_ = !log->OnTmpfs();
  if (alone) {
    HFE_RETURN_IF_ERROR(log->Recover(o.recovery));
    if (::flock(log->lock_fd_, LOCK_SH) != 0) return ErrnoStatus("flock '" + log->dir_ + "/lock'", errno);
  }
  if (log->on_disk_) {
    // In use from now on: a power loss before the last process leaves is an unclean shutdown. The mark is
    // on disk before this process can append anything.
    std::atomic_ref<uint64_t> clean(log->ctl_->clean_shutdown);
    if (clean.exchange(0, std::memory_order_acq_rel) != 0) {
      HFE_RETURN_IF_ERROR(log->control_file_.Sync(0, kControlHeaderSize));
    }
  }
  if (log->geo_.sync_policy == kSyncInterval) {
    Log* self = log.get();
    log->sync_thread_ = std::thread([self] {
      while (!self->stop_sync_.load(std::memory_order_relaxed)) {
        ::usleep(static_cast<useconds_t>(self->geo_.sync_interval_ms) * 1000);
        self->SyncResolved(self->resolved());
      }
    });
  }
  return log;
}

Status Log::Create(const StoreOptions& o) {
  if (!IsPow2(o.segment_size) || o.segment_size < (1u << 16) || o.segment_size > (1ull << 30)) {
    return InvalidArgument("segment size must be a power of two from 64 KiB to 1 GiB, found " +
                           std::to_string(o.segment_size));
  }
  if (o.stream_capacity < 16 || o.stream_capacity > (1ull << 30)) {
    return InvalidArgument("stream capacity must be 16 .. 2^30, found " + std::to_string(o.stream_capacity));
  }
  if (o.dedup_window < 16 || o.dedup_window > kMaxDedupWindow) {
    return InvalidArgument("dedup window must be 16 .. 2^30 events, found " + std::to_string(o.dedup_window));
  }
  if (o.unblock_timeout_ms < 1) return InvalidArgument("unblock timeout must be at least 1 ms");
  if (::mkdir((dir_ + "/segments").c_str(), 0700 | (o.mode & 0070)) != 0 && errno != EEXIST) {
    return ErrnoStatus("mkdir '" + dir_ + "/segments'", errno);
  }
  uint64_t stream_slots = NextPow2(o.stream_capacity * 10 / 7 + 1);
  uint64_t dedup_slots = NextPow2(o.dedup_window * 2);
  uint64_t time_slots = 16384;
  uint64_t off = kControlHeaderSize;
  uint64_t stream_off = off;
  off += stream_slots * sizeof(StreamSlot);
  uint64_t dedup_off = AlignUp(off, 4096);
  off = dedup_off + dedup_slots * sizeof(DedupHashSlot);
  uint64_t ring_off = AlignUp(off, 4096);
  off = ring_off + o.dedup_window * sizeof(DedupRingEntry);
  uint64_t time_off = AlignUp(off, 4096);
  off = AlignUp(time_off + time_slots * sizeof(TimeIndexSlot), 4096);
  uint64_t subs_off = off;
  off = AlignUp(subs_off + kSubscriptionSlots * sizeof(SubscriptionSlot), 4096);
  uint64_t readers_off = off;
  off = AlignUp(readers_off + kReaderSlots * sizeof(ReaderSlot), 4096);

  // Written under a temporary name and renamed, so no opener ever sees a half-initialised control file.
  std::string tmp = dir_ + "/control.hfe.tmp";
  ::unlink(tmp.c_str());
  ipc::FileOptions fo{o.mode, false};
  {
  auto f = ipc::MappedFile::Create(tmp, off, fo);
  if (!f.ok()) return f.status();
  auto* c = reinterpret_cast<ControlHeader*>(f->data());
  ipc::InitHeader(c, off, kControlMagic, kControlHeaderSize);
  c->segment_size = o.segment_size;
  c->stream_slots = stream_slots;
  c->dedup_window = o.dedup_window;
  c->dedup_slots = dedup_slots;
  c->stream_table_offset = stream_off;
  c->dedup_table_offset = dedup_off;
  c->dedup_ring_offset = ring_off;
  c->time_index_offset = time_off;
  c->time_index_slots = time_slots;
  c->subscription_table_offset = subs_off;
  c->subscription_slots = kSubscriptionSlots;
  c->reader_table_offset = readers_off;
  c->reader_slots = kReaderSlots;
  c->unblock_timeout_ns = static_cast<uint64_t>(o.unblock_timeout_ms) * 1'000'000;
  c->created_at_ns = clock::WallNanos();
  c->sync_policy = o.sync == store::SyncPolicy::kEveryAppend ? kSyncEveryAppend
                   : o.sync == store::SyncPolicy::kInterval  ? kSyncInterval
                                                      : kSyncNone;
  c->sync_interval_ms = static_cast<uint32_t>(std::max(1, o.sync_interval_ms));
  c->tail = kSegmentHeaderSize;
  c->resolved = kSegmentHeaderSize;
  c->first_segment = 0;
  c->journal_frame = kNoPosition;
  c->durable_position = kSegmentHeaderSize;
  c->clean_shutdown = 1;
  c->pid_namespace = liveness::PidNamespace();
  ipc::Publish(c, kLayoutVersion);
  if (c->sync_policy != kSyncNone) HFE_RETURN_IF_ERROR(f->Sync(0, off));
  if (::rename(tmp.c_str(), (dir_ + "/control.hfe").c_str()) != 0) return ErrnoStatus("rename '" + tmp + "'", errno);
  }  // unmapped here; Attach maps the published file
  return Attach(o);
}

Status Log::Attach(const StoreOptions& o) {
  // Nothing under the store is reached through a link, and no directory of it admits more than its owner
  // (and the group, when the store grants it).
  HFE_RETURN_IF_ERROR(ipc::EnsureDirectory(dir_ + "/segments", /*create=*/true, 0700 | (o.mode & 0070)));
  std::string path = dir_ + "/control.hfe";
  // Pre-faulted like the segments: the tables are hit at random, and a first-touch fault costs microseconds.
  ipc::FileOptions fo{o.mode, o.populate};
  auto f = ipc::AttachRegion(path, kControlMagic, kLayoutVersion, o.attach_timeout_ms * 1'000'000, fo);
  if (!f.ok()) return f.status();
  control_file_ = std::move(*f);
  ctl_ = reinterpret_cast<ControlHeader*>(control_file_.data());
  // The control region is shared memory: check every geometry field before trusting an offset.
  const uint64_t size = control_file_.size();
  auto bad = [&](const std::string& what) {
    return DataLoss("control region of '" + dir_ + "' is damaged: " + what +
                    " (expected a store written by hfevents; restore it from a copy or create a new store)");
  };
  if (size < kControlHeaderSize) return bad("too small");
  // Geometry is copied into this process once, then checked and used from the copy only: a process that
  // scribbles over the shared header later cannot change a size or an offset under us.
  Geometry& G = geo_;
  const ControlHeader& c = *ctl_;
  seg_size_ = c.segment_size;
  G.stream_slots = c.stream_slots;
  G.dedup_window = c.dedup_window;
  G.dedup_slots = c.dedup_slots;
  G.time_index_slots = c.time_index_slots;
  G.subscription_slots = c.subscription_slots;
  G.reader_slots = c.reader_slots;
  G.unblock_timeout_ns = c.unblock_timeout_ns;
  G.sync_policy = c.sync_policy;
  G.sync_interval_ms = c.sync_interval_ms;
  const uint64_t stream_off = c.stream_table_offset, dedup_off = c.dedup_table_offset, ring_off = c.dedup_ring_offset,
                 time_off = c.time_index_offset, subs_off = c.subscription_table_offset,
                 readers_off = c.reader_table_offset;
  if (!IsPow2(seg_size_) || seg_size_ < (1u << 16) || seg_size_ > (1ull << 30)) {
    return bad("segment size " + std::to_string(seg_size_));
  }
  if (!IsPow2(G.stream_slots) || G.stream_slots < 16 || !IsPow2(G.dedup_slots) || G.dedup_window == 0 ||
      G.dedup_window > G.dedup_slots || G.dedup_window > kMaxDedupWindow || G.dedup_slots > (1ull << 31) ||
      G.time_index_slots == 0 || G.time_index_slots > (1ull << 24)) {
    return bad("table sizes");
  }
  if (G.unblock_timeout_ns < 1'000'000 || G.unblock_timeout_ns > 3600ull * 1'000'000'000 || G.sync_policy > kSyncEveryAppend ||
      G.sync_interval_ms == 0 || G.sync_interval_ms > 3'600'000) {
    return bad("unblock timeout " + std::to_string(G.unblock_timeout_ns) + " ns / sync policy " +
               std::to_string(G.sync_policy) + " every " + std::to_string(G.sync_interval_ms) + " ms");
  }
  auto fits = [&](uint64_t off, uint64_t n, uint64_t each) {
    return off >= kControlHeaderSize && off <= size && n <= (size - off) / each;
  };
  if (!fits(stream_off, G.stream_slots, sizeof(StreamSlot)) || !fits(dedup_off, G.dedup_slots, sizeof(DedupHashSlot)) ||
      !fits(ring_off, G.dedup_window, sizeof(DedupRingEntry)) ||
      !fits(time_off, G.time_index_slots, sizeof(TimeIndexSlot)) || G.subscription_slots == 0 ||
      G.subscription_slots > 4096 || !fits(subs_off, G.subscription_slots, sizeof(SubscriptionSlot)) ||
      G.reader_slots == 0 || G.reader_slots > 65536 || readers_off % alignof(ReaderSlot) != 0 ||
      !fits(readers_off, G.reader_slots, sizeof(ReaderSlot))) {
    return bad("table offsets outside the file");
  }
  // The tables must not overlap: a header aiming one table at another would let readers' slot words land
  // in stream slots, or the resolver's dedup writes in subscriptions.
  const std::pair<uint64_t, uint64_t> tables[] = {
      {stream_off, G.stream_slots * sizeof(StreamSlot)},       {dedup_off, G.dedup_slots * sizeof(DedupHashSlot)},
      {ring_off, G.dedup_window * sizeof(DedupRingEntry)},     {time_off, G.time_index_slots * sizeof(TimeIndexSlot)},
      {subs_off, G.subscription_slots * sizeof(SubscriptionSlot)}, {readers_off, G.reader_slots * sizeof(ReaderSlot)}};
  for (size_t i = 0; i < std::size(tables); ++i) {
    for (size_t j = i + 1; j < std::size(tables); ++j) {
      if (tables[i].first < tables[j].first + tables[j].second && tables[j].first < tables[i].first + tables[i].second) {
        return bad("tables overlap");
      }
    }
  }
  uint64_t t = tail(), r = resolved();
  if (t % seg_size_ < kSegmentHeaderSize || r % seg_size_ < kSegmentHeaderSize || r > t ||
      ctl_->first_segment > t / seg_size_ || t / seg_size_ >= (1ull << 40)) {
    return bad("tail " + std::to_string(t) + " / resolved " + std::to_string(r));
  }
  // Liveness (the resolver lease, stalled writers, members) is judged by pid through /proc: from another PID
  // namespace live processes would look dead and be "repaired" under their feet.
  const uint64_t ns = std::atomic_ref<uint64_t>(ctl_->pid_namespace).load(std::memory_order_relaxed);
  const uint64_t own_ns = liveness::PidNamespace();
  if (ns != 0 && own_ns != 0 && ns != own_ns) {
    return FailedPrecondition("store '" + dir_ + "' was created in PID namespace " + std::to_string(ns) +
                              ", this process runs in PID namespace " + std::to_string(own_ns) +
                              "; its processes cannot see each other's pids, so attach from the namespace that " +
                              "created it (e.g. share the host's PID namespace with the container)");
  }
  streams_ = reinterpret_cast<StreamSlot*>(control_file_.data() + stream_off);
  dedup_ = reinterpret_cast<DedupHashSlot*>(control_file_.data() + dedup_off);
  ring_ = reinterpret_cast<DedupRingEntry*>(control_file_.data() + ring_off);
  time_index_ = reinterpret_cast<TimeIndexSlot*>(control_file_.data() + time_off);
  subscriptions_ = reinterpret_cast<SubscriptionSlot*>(control_file_.data() + subs_off);
  readers_ = reinterpret_cast<ReaderSlot*>(control_file_.data() + readers_off);
  stream_mask_ = G.stream_slots - 1;
  dedup_mask_ = G.dedup_slots - 1;
  max_streams_ = G.stream_slots * 7 / 10;
  scratch_.resize(kMaxStreamsPerFrame);
  entry_hashes_.resize(kMaxStreamsPerFrame);
  // Never 0, so that a default-constructed ticket is refused.
  for (ticket_nonce_ = 0; ticket_nonce_ == 0;) ticket_nonce_ = EventId::Random().lo;
  if (auto tail_segment = MapSegment(t / seg_size_, /*create=*/true); !tail_segment.ok()) {
    return Status(tail_segment.status().code(), "the segment holding the tail of '" + dir_ +
                                                    "' cannot be opened: " + tail_segment.status().message());
  }
  return Status::Ok();
}

uint8_t* Log::Segment(uint64_t index, bool create) const {
  auto base = MapSegment(index, create);
  return base.ok() ? *base : nullptr;
}

Result<uint8_t*> Log::MapSegment(uint64_t index, bool create) const {
  std::atomic<const SegmentNode*>& slot = map_slots_[index % kMapSlots];
  // Acquire: pairs with the release stores below; the node's fields and the mapping's header are visible.
  const SegmentNode* node = slot.load(std::memory_order_acquire);
  if (node && node->index == index) return node->base;

  std::lock_guard<std::mutex> lock(map_mu_);
  if (auto it = mapped_.find(index); it != mapped_.end()) {
    // Mapped already, its slot taken by a colliding segment: point the slot back at it, no new mapping.
    slot.store(it->second.node, std::memory_order_release);
    return it->second.node->base;
  }
  if (index < first_segment()) {
    // Retention retired it (and unlinked its file): never created again, never mapped again.
    return NotFound("segment " + std::to_string(index) + " of '" + dir_ + "' was retired");
  }
  std::string path = SegmentPath(index);
  if (!create) {
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) return NotFound("segment file '" + path + "' does not exist");
  }
  ipc::FileOptions fo{options_.mode, options_.populate};
  auto f = ipc::MappedFile::Open(path, seg_size_, fo, create);
  if (!f.ok()) return f.status();
  if (f->size() != seg_size_) {
    return DataLoss("segment file '" + path + "' holds " + std::to_string(f->size()) + " bytes, expected " +
                    std::to_string(seg_size_) + " (not a segment of this store; move it away)");
  }
  auto* h = reinterpret_cast<SegmentHeader*>(f->data());
  if (h->magic == 0) {
    h->segment_index = index;
    h->segment_size = seg_size_;
    std::atomic_ref<uint64_t>(h->magic).store(kSegmentMagic, std::memory_order_release);
  } else if (h->magic != kSegmentMagic || h->segment_index != index || h->segment_size != seg_size_) {
    // Another file put in its place: not ours to read.
    return DataLoss("segment file '" + path + "' is not segment " + std::to_string(index) +
                    " of this store (wrong magic, index or size; move it away or restore it)");
  }
  nodes_.push_back({index, f->data()});
  node = &nodes_.back();
  mapped_.emplace(index, Mapped{std::move(*f), node});
  // Release: pairs with the acquire load above.
  slot.store(node, std::memory_order_release);
  return node->base;
}

void Log::SyncSegments(uint64_t from, uint64_t to) const {
  if (to <= from) return;
  for (uint64_t seg = from / seg_size_; seg <= (to - 1) / seg_size_; ++seg) {
    if (!Segment(seg, false)) continue;
    std::lock_guard<std::mutex> lock(map_mu_);
    if (auto it = mapped_.find(seg); it != mapped_.end()) {
      uint64_t b = seg == from / seg_size_ ? from % seg_size_ : 0;
      uint64_t e = seg == (to - 1) / seg_size_ ? (to - 1) % seg_size_ + 1 : seg_size_;
      (void)it->second.file.Sync(b, e - b);
    }
  }
}

void Log::SyncResolved(uint64_t to) {
  // Only resolved frames are final (written, committed, decided): the checkpoint never passes the watermark.
  to = std::min(to, resolved());
  std::atomic_ref<uint64_t> durable(ctl_->durable_position);
  // Acquire: pairs with the release below; whoever advanced the checkpoint synced what lies under it.
  uint64_t from = std::max(durable.load(std::memory_order_acquire), first_segment() * seg_size_);
  if (to > from) {
    SyncSegments(from, to);
    // Release: the segments below `to` are on disk before a checkpoint saying so can be.
    uint64_t d = durable.load(std::memory_order_relaxed);
    while (d < to && !durable.compare_exchange_weak(d, to, std::memory_order_release, std::memory_order_relaxed)) {
    }
  }
  (void)control_file_.Sync(0, control_file_.size());
}

void Log::MarkCleanIfLast() {
  if (!on_disk_ || ctl_ == nullptr || lock_fd_ < 0) return;
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) return;  // others are attached: the last one marks it
  // Every segment of the log reaches the disk (pages other processes wrote included), then the control file
  // with the mark. A new opener waits on the lock until this is done.
  const uint64_t last = tail() / seg_size_ + 1;
  for (uint64_t seg = first_segment(); seg <= last; ++seg) {
    int fd = ::open(SegmentPath(seg).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) continue;
    const bool synced = ::fsync(fd) == 0;
    ::close(fd);
    if (!synced) return;  // not clean: the next opener rebuilds
  }
  std::atomic_ref<uint64_t>(ctl_->durable_position).store(resolved(), std::memory_order_release);
  std::atomic_ref<uint64_t>(ctl_->clean_shutdown).store(1, std::memory_order_release);
  (void)control_file_.Sync(0, control_file_.size());
}

StoreStats Log::Stats() const {
  StoreStats s;
  auto ld = [](const uint64_t& v) { return std::atomic_ref<uint64_t>(const_cast<uint64_t&>(v)).load(std::memory_order_relaxed); };
  s.events = ld(ctl_->accepted_events);
  s.streams = ld(ctl_->stream_count);
  s.accepted_frames = ld(ctl_->accepted_frames);
  s.rejected_frames = ld(ctl_->rejected_frames);
  s.corrupt_frames = ld(ctl_->corrupt_frames);
  s.padded_frames = ld(ctl_->padded_frames);
  s.first_segment = ld(ctl_->first_segment);
  s.tail_position = tail();
  s.resolved_position = resolved();
  s.segments = s.tail_position / seg_size_ - s.first_segment + 1;
  s.bytes = s.tail_position - s.first_segment * seg_size_;
  s.segment_size = seg_size_;
  s.dedup_window = geo_.dedup_window;
  s.stream_capacity = max_streams_;
  s.repairs = ld(ctl_->repairs);
  return s;
}

}  // namespace hfe::store
