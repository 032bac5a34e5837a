// Consumer groups: the group file, the dispatcher role (election, rebalancing, dispatch) and the member
// loop (handle, retry, park, ack). See consumer_group.h for the guarantees and group_format.h for the bytes.
#include "store/consumer_group.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <thread>

#include "ipc/clock.h"
#include "ipc/liveness.h"
#include "ipc/region.h"
#include "ring/spsc_ring.h"
#include "schemas/events_generated.h"
#include "store/group_format.h"
#include "store/internal/admin_lock.h"
#include "store/internal/fault.h"
#include "store/internal/hash.h"
#include "store/internal/log.h"

namespace hfe::store {

using namespace group_format;
using WorkRing = ring::SpscRing<Work>;

namespace {

std::atomic_ref<uint64_t> A(uint64_t& v) { return std::atomic_ref<uint64_t>(v); }
std::atomic_ref<int64_t> A(int64_t& v) { return std::atomic_ref<int64_t>(v); }

std::string GroupPath(const Log& log, std::string_view name) { return log.dir() + "/groups/" + std::string(name) + ".grp"; }

// Everything before this position is acknowledged: partitions with work outstanding hold it at their acked
// cursor; the others are caught up to where the dispatcher reads.
uint64_t GroupCursor(GroupHeader* h) {
  uint64_t low = std::atomic_ref<uint64_t>(h->dispatch_position).load(std::memory_order_acquire);
  for (uint32_t p = 0; p < h->partitions; ++p) {
    uint64_t acked = std::atomic_ref<uint64_t>(h->acked[p]).load(std::memory_order_acquire);
    if (acked < std::atomic_ref<uint64_t>(h->dispatched[p]).load(std::memory_order_acquire)) low = std::min(low, acked);
  }
  return low;
}

// Moves a partition's acked cursor forward to `next`, never back: a member whose partition moved on while
// its handler ran must not pull the cursor below what the new owner acknowledged since. True when it moved.
bool AckThrough(uint64_t& acked, uint64_t next) {
  uint64_t cur = A(acked).load(std::memory_order_relaxed);  // the CAS below orders
  while (cur < next) {
    // Release: pairs with the dispatcher's acquire of acked[p]; the handler's effects precede the ack.
    if (A(acked).compare_exchange_weak(cur, next, std::memory_order_release, std::memory_order_relaxed)) return true;
  }
  return false;
}

uint8_t* RingMemory(GroupHeader* h, uint32_t member) {
  return reinterpret_cast<uint8_t*>(h) + kGroupHeaderSize + member * h->ring_bytes;
}

}  // namespace

struct GroupState {
  EventStore* store = nullptr;
  Log* log = nullptr;
  std::string name;
  ipc::MappedFile file;
  GroupHeader* h = nullptr;
  format::SubscriptionSlot* slot = nullptr;
  uint32_t me = 0;
  uint64_t token = 0;
  uint64_t generation = 0;  // of this member's slot, taken at Join
  uint64_t lease = 0;       // LeaseOf(generation): the slot's lease while this member holds it
  uint64_t owner_word = 0;  // OwnerWord(me, generation): how owner[p] names this member
  std::optional<WorkRing> inbox;              // this member's ring, consumer side (once laid out for us)
  std::array<uint64_t, kMaxPartitions> done{};  // per partition: position after the newest handled here
  // Dispatcher state (meaningful while leading).
  bool leading = false;
  std::array<std::optional<WorkRing>, kMaxMembers> outbox;  // producer side of every member's ring
  std::array<uint64_t, kMaxMembers> outbox_generation{};  // the member generation each outbox serves
  std::array<int64_t, kMaxMembers> next_liveness_check{};
  std::array<bool, kMaxPartitions> paused{};
  ReadCursor cursor;
  EventFilter filter;
  std::string prefix;
  int64_t next_leader_check = 0;
  int64_t next_lock_check = 0;

  uint32_t Partition(std::string_view stream) const {
    return static_cast<uint32_t>(internal::HashStream(stream).lo % h->partitions);
  }
};

GroupMember::GroupMember(std::unique_ptr<GroupState> s) : s_(std::move(s)) {}

GroupMember::~GroupMember() {
  if (!s_) return;
  internal::AdminLock lock(s_->log->dir());
  MemberSlot& ms = s_->h->members[s_->me];
  // Free the slot only if it is still this generation's: once declared dead and freed, this process may
  // have joined again into the same slot (the admin lock orders this against Join).
  if (LeaseGeneration(A(ms.lease).load(std::memory_order_relaxed)) == s_->generation) {
    uint64_t mine = s_->token;
    // Release: pairs with Join's acquire of the token; this member's last use of its ring precedes it.
    A(ms.token).compare_exchange_strong(mine, 0, std::memory_order_release, std::memory_order_relaxed);
  }
  uint64_t lead = s_->token;
  A(s_->h->leader).compare_exchange_strong(lead, 0, std::memory_order_acq_rel);
}

int GroupMember::index() const { return static_cast<int>(s_->me); }
bool GroupMember::dispatching() const { return s_->leading; }

Result<std::unique_ptr<GroupMember>> GroupMember::Join(EventStore& store, std::string_view name, const GroupOptions& o) {
  if (name.empty() || name.size() > format::kMaxSubscriptionName || name.find('/') != std::string_view::npos) {
    return InvalidArgument("group name must be 1.." + std::to_string(format::kMaxSubscriptionName) +
                           " bytes without '/', found \"" + std::string(name) + "\"");
  }
  if (o.partitions < 1 || o.partitions > kMaxPartitions) {
    return InvalidArgument("partitions must be 1.." + std::to_string(kMaxPartitions) + ", found " + std::to_string(o.partitions));
  }
  uint64_t types[4];
  HFE_RETURN_IF_ERROR(CheckFilter(o.types, o.stream_prefix, types));
  Log& log = store.log();
  internal::AdminLock lock(log.dir());
  auto st = std::make_unique<GroupState>();
  st->store = &store;
  st->log = &log;
  st->name = std::string(name);
  st->token = liveness::SelfToken();
  std::string path = GroupPath(log, name);
  HFE_RETURN_IF_ERROR(ipc::EnsureDirectory(log.dir() + "/groups", /*create=*/true, 0700));
  struct stat sb;
  if (::lstat(path.c_str(), &sb) != 0) {
    // Create the group: its subscription slot (so listings show it) and its file.
    if (FindSubscriptionSlot(log, name)) {
      return FailedPrecondition("\"" + std::string(name) + "\" is a single-member subscription, not a group");
    }
    format::SubscriptionSlot* slot = FreeSubscriptionSlot(log);
    if (!slot) return ResourceExhausted("the store's subscription table is full; delete a subscription first");
    auto started = StartPosition(log, o.start, o.position, o.timestamp_ns);
    if (!started.ok()) return started.status();
    const uint64_t start = *started;
    const uint64_t ring_bytes = format::AlignUp(WorkRing::BytesFor(o.ring_capacity), 4096);
    const size_t size = kGroupHeaderSize + kMaxMembers * ring_bytes;
    std::string tmp = path + ".tmp";
    ::unlink(tmp.c_str());
    {
      auto f = ipc::MappedFile::Create(tmp, size, {0600, true});
      if (!f.ok()) return f.status();
      auto* h = reinterpret_cast<GroupHeader*>(f->data());
      ipc::InitHeader(h, size, kGroupMagic, kGroupHeaderSize);
      h->partitions = o.partitions;
      h->max_members = kMaxMembers;
      h->ring_capacity = o.ring_capacity;
      h->ring_bytes = ring_bytes;
      h->liveness_timeout_ns = std::max<int64_t>(1, o.liveness_timeout_ms) * 1'000'000;
      std::memcpy(h->type_filter, types, sizeof types);
      h->prefix_length = static_cast<uint16_t>(o.stream_prefix.size());
      std::memcpy(h->prefix, o.stream_prefix.data(), o.stream_prefix.size());
      h->retry_budget = std::max<uint32_t>(1, o.retry_budget);
      h->dispatch_position = start;
      h->start_position = start;
      for (uint32_t p = 0; p < kMaxPartitions; ++p) h->owner[p] = kUnowned;
      for (uint32_t p = 0; p < kMaxPartitions; ++p) h->acked[p] = h->dispatched[p] = start;
      for (uint32_t m = 0; m < kMaxMembers; ++m) {
        auto r = WorkRing::Create(RingMemory(h, m), ring_bytes, o.ring_capacity);
        if (!r.ok()) return r.status();
      }
      ipc::Publish(h, kGroupLayoutVersion);
      if (::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoStatus("rename '" + tmp + "'", errno);
    }
    internal::Fault(internal::FaultPoint::kGroupCreated);
    PublishSubscriptionSlot(slot, name, start, types, o.stream_prefix, format::kSubscriptionGroup);
  }
  auto f = ipc::AttachRegion(path, kGroupMagic, kGroupLayoutVersion, 1'000'000'000, {0600, true});
  if (!f.ok()) return f.status();
  st->file = std::move(*f);
  st->h = reinterpret_cast<GroupHeader*>(st->file.data());
  GroupHeader* h = st->h;
  // The file is shared memory: check its geometry before using an offset.
  if (h->partitions < 1 || h->partitions > kMaxPartitions || h->max_members != kMaxMembers ||
      h->ring_bytes < WorkRing::BytesFor(h->ring_capacity) ||
      kGroupHeaderSize + kMaxMembers * h->ring_bytes != st->file.size()) {
    return DataLoss("group file '" + path + "' is damaged (geometry); remove it to recreate the group");
  }
  if (std::memcmp(h->type_filter, types, sizeof types) != 0 ||
      std::string_view(h->prefix, std::min<uint16_t>(h->prefix_length, 64)) != o.stream_prefix) {
    return FailedPrecondition("group \"" + std::string(name) + "\" exists with another filter; join with the same one");
  }
  st->slot = FindSubscriptionSlot(log, name);
  if (!st->slot) {
    // Under the admin lock no creator is half-way: a file without a slot is one whose creator died between
    // publishing the file and the slot. Finish its work from the file's own start and filter.
    format::SubscriptionSlot* slot = FreeSubscriptionSlot(log);
    if (!slot) return ResourceExhausted("the store's subscription table is full; delete a subscription first");
    PublishSubscriptionSlot(slot, name, h->start_position, types, o.stream_prefix, format::kSubscriptionGroup);
    st->slot = slot;
  }
  if (st->slot->kind != format::kSubscriptionGroup) {
    return DataLoss("group \"" + std::string(name) + "\" has a file but no subscription slot; remove its file");
  }
  // Take a free member slot, or one whose process is gone (a member declared dead keeps its token until it
  // leaves, so its slot is not reused while it may still read its ring). A process is one member.
  for (uint32_t m = 0; m < kMaxMembers; ++m) {
    if (A(h->members[m].token).load(std::memory_order_relaxed) == st->token) {
      return FailedPrecondition("this process is already a member of group \"" + std::string(name) + "\"");
    }
  }
  int chosen = -1;
  for (uint32_t m = 0; m < kMaxMembers && chosen < 0; ++m) {
    // Acquire: pairs with the release of a member leaving the slot; its use of the ring is over.
    uint64_t t = A(h->members[m].token).load(std::memory_order_acquire);
    if (t == 0 || (t != st->token && !liveness::IsAlive(t))) chosen = static_cast<int>(m);
  }
  if (chosen < 0) return ResourceExhausted("group \"" + std::string(name) + "\" has 16 live members already");
  st->me = static_cast<uint32_t>(chosen);
  MemberSlot& ms = h->members[st->me];
  // A new generation of the slot (Joins are ordered by the admin lock, so the generation is ours alone).
  // The ring is not touched here: a dispatcher that has not noticed the previous process's end may still be
  // pushing into it. The dispatcher lays it out afresh for this generation and then says so.
  st->generation = LeaseGeneration(A(ms.lease).load(std::memory_order_relaxed)) + 1;
  st->lease = LeaseOf(st->generation);
  st->owner_word = OwnerWord(st->me, st->generation);
  A(ms.handled).store(0, std::memory_order_relaxed);
  A(ms.failed).store(0, std::memory_order_relaxed);
  A(ms.parked).store(0, std::memory_order_relaxed);
  A(ms.heartbeat_ns).store(clock::WallNanos(), std::memory_order_relaxed);
  A(ms.token).store(st->token, std::memory_order_relaxed);
  // Release: pairs with the dispatcher's acquire of the lease; this generation's token and heartbeat are
  // visible with it.
  A(ms.lease).store(st->lease, std::memory_order_release);
  for (uint32_t p = 0; p < kMaxPartitions; ++p) st->done[p] = 0;
  st->prefix.assign(h->prefix, std::min<uint16_t>(h->prefix_length, 64));
  std::memcpy(st->filter.types, h->type_filter, sizeof st->filter.types);
  st->filter.prefix = st->prefix;
  return std::unique_ptr<GroupMember>(new GroupMember(std::move(st)));
}

// ------------------------------------------------------------------------------------------ dispatcher
namespace {

// Releases the dispatch lock.
void UnlockDispatch(GroupState& s) {
  // Release: pairs with the next holder's acquiring CAS in LockDispatch; what this dispatcher wrote
  // (assignment, cursors, ring tails) is visible to it.
  A(s.h->dispatch_lock).store(0, std::memory_order_release);
}

// Takes the dispatch lock (group_format.h): free, or held by a process that is gone. A live holder is a
// predecessor that lost the role while inside Dispatch: wait for it to leave rather than become a second
// producer on its rings. Then re-checks the role, which may have moved on before the lock was taken.
bool LockDispatch(GroupState& s, int64_t now) {
  GroupHeader* h = s.h;
  uint64_t holder = A(h->dispatch_lock).load(std::memory_order_relaxed);  // the CAS below orders
  if (holder != 0 && holder != s.token) {
    if (now < s.next_lock_check) return false;
    s.next_lock_check = now + 10'000'000;
    if (liveness::IsAlive(holder)) return false;
  }
  // Acquire: pairs with the previous holder's release in UnlockDispatch.
  if (!A(h->dispatch_lock).compare_exchange_strong(holder, s.token, std::memory_order_acquire,
                                                   std::memory_order_relaxed)) {
    return false;
  }
  // Acquire: pairs with the role CAS of a successor; if it has dispatched since, its unlock precedes our
  // lock and this load sees it.
  if (A(h->leader).load(std::memory_order_acquire) != s.token) {
    UnlockDispatch(s);
    return false;
  }
  return true;
}

// Takes the dispatcher role when it is free or its holder is dead or silent (liveness is read from /proc
// at most every 100 ms), then the dispatch lock. True when this member may rebalance and dispatch now;
// the caller unlocks after Dispatch.
bool TryLead(GroupState& s, int64_t now) {
  GroupHeader* h = s.h;
  uint64_t leader = A(h->leader).load(std::memory_order_acquire);  // partner: the role CAS below
  if (leader != s.token) {
    if (now < s.next_leader_check) return false;
    s.next_leader_check = now + 100'000'000;
    bool vacant = leader == 0 || !liveness::IsAlive(leader) ||
                  clock::WallNanos() - A(h->leader_heartbeat_ns).load(std::memory_order_relaxed) > h->liveness_timeout_ns;
    if (!vacant) return false;
    // Acq_rel: pairs with the acquire loads of the role (here and in LockDispatch).
    if (!A(h->leader).compare_exchange_strong(leader, s.token, std::memory_order_acq_rel)) return false;
    s.leading = false;  // (re)initialised by Rebalance
  }
  // The role is ours: keep it fresh even while a stalled predecessor still holds the lock.
  A(h->leader_heartbeat_ns).store(clock::WallNanos(), std::memory_order_relaxed);
  return LockDispatch(s, now);
}

// Membership, assignment and rewinds. Called by the dispatcher on every poll; false when no member is live.
bool Rebalance(GroupState& s, int64_t now) {
  GroupHeader* h = s.h;
  const int64_t wall = clock::WallNanos();
  bool force = !s.leading;
  // Who is alive: a member whose process is gone or that has been silent past the timeout is declared dead.
  std::array<bool, kMaxMembers> live{};
  std::array<uint64_t, kMaxMembers> generation{};
  std::array<uint32_t, kMaxMembers> members;
  uint32_t count = 0;
  for (uint32_t m = 0; m < kMaxMembers; ++m) {
    MemberSlot& ms = h->members[m];
    // Acquire: pairs with Join's release of the lease; that generation's token and heartbeat are visible.
    uint64_t lease = A(ms.lease).load(std::memory_order_acquire);
    uint64_t t = A(ms.token).load(std::memory_order_relaxed);
    if (t == 0 || LeaseEvicted(lease)) continue;
    bool ok = wall - A(ms.heartbeat_ns).load(std::memory_order_relaxed) <= h->liveness_timeout_ns;
    if (ok && t != s.token && now >= s.next_liveness_check[m]) {
      ok = liveness::IsAlive(t);
      s.next_liveness_check[m] = now + 100'000'000;
    }
    if (!ok) {
      // Declared dead. The token stays, so a Join does not reuse the slot while that process may still read
      // its ring; the member frees the slot when its next Poll sees this. Release: pairs with that Poll's
      // acquire of the lease. Fails harmlessly when a Join just began a new generation.
      A(ms.lease).compare_exchange_strong(lease, lease | kEvicted, std::memory_order_release,
                                          std::memory_order_relaxed);
      continue;
    }
    live[m] = true;
    generation[m] = LeaseGeneration(lease);
    members[count++] = m;
    if (s.outbox_generation[m] != generation[m]) {
      // A generation new to this dispatcher. Its ring is laid out once per generation, by a dispatcher (the
      // producer) while the member does not read it yet: what an older generation left queued there went
      // down with that process, and its partitions are rewound below.
      s.outbox[m].reset();
      // Acquire: pairs with the release below of the dispatcher that laid the ring out for this generation.
      if (A(ms.ring_generation).load(std::memory_order_acquire) != generation[m]) {
        auto r = WorkRing::Create(RingMemory(h, m), h->ring_bytes, h->ring_capacity);
        if (r.ok()) {
          s.outbox[m].emplace(std::move(*r));
          // Release: pairs with the member's acquire in Poll; it reads the ring only once it is laid out.
          A(ms.ring_generation).store(generation[m], std::memory_order_release);
        }
      } else if (auto r = WorkRing::Attach(RingMemory(h, m), h->ring_bytes); r.ok()) {
        s.outbox[m].emplace(std::move(*r));
      }
      s.outbox_generation[m] = generation[m];
    }
  }
  if (count == 0) return false;
  bool rewind = force;
  uint64_t rewind_to = A(h->dispatch_position).load(std::memory_order_relaxed);
  if (force) rewind_to = GroupCursor(h);  // a new dispatcher: what its predecessor left unacked
  for (uint32_t p = 0; p < h->partitions; ++p) {
    const uint32_t target = members[p % count];
    const uint64_t target_word = OwnerWord(target, generation[target]);
    const uint64_t cur = A(h->owner[p]).load(std::memory_order_relaxed);
    const uint32_t o = OwnerMember(cur);
    s.paused[p] = false;
    if (cur == target_word) continue;
    if (o >= kMaxMembers || !live[o] || OwnerGeneration(cur) != generation[o]) {
      // Unassigned, or its owner is gone: dead, declared dead, left, or replaced in its slot by a newer
      // generation (whose fresh ring lacks what the old one was given). Everything it did not ack goes to
      // the new owner.
      uint64_t acked = A(h->acked[p]).load(std::memory_order_acquire);
      if (acked < A(h->dispatched[p]).load(std::memory_order_relaxed)) {
        rewind_to = std::min(rewind_to, acked);
        // Publish the rewind before forgetting what was dispatched. Once dispatched[p] == acked[p], GroupCursor
        // no longer holds the cursor at acked[p]; only dispatch_position does. A dispatcher that dies (SIGKILL)
        // from here to Dispatch's store of its cursor would otherwise leave dispatch_position past this
        // partition's unacknowledged events, and its successor (which rewinds to GroupCursor) would skip them.
        if (rewind_to < A(h->dispatch_position).load(std::memory_order_relaxed)) {
          A(h->dispatch_position).store(rewind_to, std::memory_order_relaxed);
        }
      }
      // Release: the lowered dispatch_position above is visible before the partition reads as drained.
      A(h->dispatched[p]).store(acked, std::memory_order_release);
      // Release: pairs with the member's acquire of its owner word before it handles work of p.
      A(h->owner[p]).store(target_word, std::memory_order_release);
      rewind = true;
      A(h->epoch).fetch_add(1, std::memory_order_relaxed);
    } else if (A(h->acked[p]).load(std::memory_order_acquire) >= A(h->dispatched[p]).load(std::memory_order_relaxed)) {
      // A live owner that has drained the partition hands it to a newcomer.
      A(h->owner[p]).store(target_word, std::memory_order_release);
      A(h->epoch).fetch_add(1, std::memory_order_relaxed);
    } else {
      s.paused[p] = true;  // wait for its owner to finish what it was given
    }
  }
  if (rewind) {
    s.cursor = ReadCursor{};
    s.cursor.from = rewind_to;
  }
  s.leading = true;
  return true;
}

size_t Dispatch(GroupState& s, size_t budget) {
  GroupHeader* h = s.h;
  internal::Fault(internal::FaultPoint::kGroupDispatch);
  size_t pushed = 0;
  const uint32_t epoch = static_cast<uint32_t>(A(h->epoch).load(std::memory_order_relaxed));
  auto r = s.log->ReadBatch(s.cursor, budget, s.filter, [&](const EventView& e) {
    uint32_t p = s.Partition(e.stream);
    if (e.position < A(h->dispatched[p]).load(std::memory_order_relaxed)) return true;  // given out before
    if (s.paused[p]) return false;
    const uint64_t w = A(h->owner[p]).load(std::memory_order_relaxed);  // written by this dispatcher
    const uint32_t o = OwnerMember(w);
    if (o >= kMaxMembers || !s.outbox[o] || OwnerGeneration(w) != s.outbox_generation[o]) return false;
    if (!s.outbox[o]->TryPush(Work{e.position, p, epoch})) return false;  // that member is full: later
    A(h->dispatched[p]).store(e.position + 1, std::memory_order_release);
    ++pushed;
    return true;
  });
  (void)r;
  if (s.cursor.positioned) A(h->dispatch_position).store(s.cursor.from, std::memory_order_relaxed);
  A(s.slot->cursor).store(GroupCursor(h), std::memory_order_release);  // for listings
  return pushed;
}

}  // namespace

Result<size_t> GroupMember::Poll(const Handler& handle, size_t max) {
  GroupState& s = *s_;
  GroupHeader* h = s.h;
  const int64_t now = clock::MonotonicNanos();
  MemberSlot& ms = h->members[s.me];
  // Acquire: pairs with the dispatcher's release when it declared this generation dead.
  if (A(ms.lease).load(std::memory_order_acquire) != s.lease || A(ms.token).load(std::memory_order_relaxed) != s.token) {
    if (A(ms.lease).load(std::memory_order_relaxed) == (s.lease | kEvicted)) {
      // Leave the slot: from here on this process does not touch its ring, so a Join may reuse it.
      // Release: pairs with Join's acquire of the token.
      uint64_t mine = s.token;
      A(ms.token).compare_exchange_strong(mine, 0, std::memory_order_release, std::memory_order_relaxed);
    }
    s.inbox.reset();
    return FailedPrecondition("this member of group \"" + s.name + "\" was declared dead (silent past the liveness " +
                              "timeout); its partitions moved on: join again");
  }
  A(ms.heartbeat_ns).store(clock::WallNanos(), std::memory_order_relaxed);
  if (TryLead(s, now)) {
    if (Rebalance(s, now)) Dispatch(s, 4 * max);
    UnlockDispatch(s);
  } else {
    s.leading = false;
  }
  if (!s.inbox) {
    // Acquire: pairs with the dispatcher's release once it laid this ring out for this generation.
    if (A(ms.ring_generation).load(std::memory_order_acquire) != s.generation) return size_t{0};
    auto inbox = WorkRing::Attach(RingMemory(h, s.me), h->ring_bytes);
    if (!inbox.ok()) return inbox.status();
    s.inbox.emplace(std::move(*inbox));
  }
  // Handle this member's queue, in order.
  size_t handled = 0, acked = 0;
  Work w;
  EventView v;
  ReadSection section(*s.log);  // the views handed to `handle` show each payload whole or redacted
  while (handled < max && s.inbox->TryPop(&w)) {
    if (w.partition >= h->partitions) continue;  // scribbled work item
    uint32_t p = w.partition;
    // Acquire: pairs with the dispatcher's release of the owner word (with the partition's rewind).
    if (A(h->owner[p]).load(std::memory_order_acquire) != s.owner_word) continue;  // moved to another member
    if (w.position < A(h->acked[p]).load(std::memory_order_acquire) || w.position < s.done[p]) continue;
    if (!ViewAt(*s.log, w.position, &v)) {
      // Not an accepted event (a scribbled work item): nothing to deliver, but the partition moves on.
      if (w.position < s.log->resolved()) AckThrough(h->acked[p], w.position + 1);
      continue;
    }
    Status st;
    int attempts = 0;
    for (; attempts < static_cast<int>(h->retry_budget); ++attempts) {
      st = handle(v);
      if (st.ok()) break;
      A(ms.failed).fetch_add(1, std::memory_order_relaxed);
      if (attempts + 1 < static_cast<int>(h->retry_budget)) {
        std::this_thread::sleep_for(std::chrono::microseconds(100 << attempts));  // backoff
      }
    }
    if (!st.ok()) {
      HFE_RETURN_IF_ERROR(Park(*s.store, s.name, v, st, attempts));
      A(ms.parked).fetch_add(1, std::memory_order_relaxed);
      A(s.slot->parked).fetch_add(1, std::memory_order_relaxed);
    }
    s.done[p] = w.position + 1;
    A(ms.handled).fetch_add(1, std::memory_order_relaxed);
    ++handled;
    // Declared dead while the handler ran (silent past the liveness timeout): the partition goes, or has
    // gone, to another member with this event unacknowledged; store nothing and stop (the next Poll says
    // so). Acquire: pairs with the dispatcher's release when it declared this generation dead.
    if (A(ms.lease).load(std::memory_order_acquire) != s.lease) break;
    // Acquire: pairs with the dispatcher's release of the owner word. A move that races with this check
    // is why acks only move forward (AckThrough).
    if (A(h->owner[p]).load(std::memory_order_acquire) != s.owner_word) continue;
    if (AckThrough(h->acked[p], w.position + 1)) ++acked;
  }
  if (handled) A(s.slot->delivered).fetch_add(handled, std::memory_order_relaxed);
  if (acked) A(s.slot->acked).fetch_add(acked, std::memory_order_relaxed);
  return handled;
}

Result<GroupMember::ReplayResult> GroupMember::ReplayParked(const Handler& handle) {
  GroupState& s = *s_;
  ReplayResult res;
  const std::string stream = "$parked-" + s.name;
  const uint64_t end = s.store->GetStream(stream).next_version;  // not the ones re-parked by this replay
  std::vector<uint64_t> originals;
  uint64_t from = A(s.h->parked_replayed).load(std::memory_order_acquire);
  Status st = s.store->ReadStream(stream, from, [&](const EventView& v) {
    if (v.version >= end) return false;
    const schema::Envelope* env = nullptr;
    flatbuffers::Verifier ver(v.payload.data(), v.payload.size());
    if (schema::VerifyEnvelopeBuffer(ver)) env = schema::GetEnvelope(v.payload.data());
    const schema::ParkedEvent* p = env ? env->body_as_ParkedEvent() : nullptr;
    originals.push_back(p ? p->original_position() : ~0ull);
    return true;
  });
  HFE_RETURN_IF_ERROR(st);
  EventView original;
  ReadSection section(*s.log);
  for (uint64_t pos : originals) {
    ++res.replayed;
    if (pos != ~0ull && ViewAt(*s.log, pos, &original)) {
      Status h = handle(original);
      if (h.ok()) {
        ++res.succeeded;
      } else {
        // A fresh id for the re-parked record: the first one is already in the parked stream.
        EventView again = original;
        again.id = EventId{original.id.hi ^ (from + res.replayed), original.id.lo ^ 0x52455041524bull};
        HFE_RETURN_IF_ERROR(Park(*s.store, s.name, again, h, 1));
        ++res.reparked;
      }
    }
    A(s.h->parked_replayed).store(from + res.replayed, std::memory_order_release);
  }
  return res;
}

void GroupMember::Wait(int64_t timeout_ns) {
  // Work arrives through the ring from the dispatcher, which may be another process: wait in short
  // steps (1 ms at most), on the log's watermark when this member dispatches.
  int64_t step = std::min<int64_t>(timeout_ns, 1'000'000);
  if (s_->leading) {
    s_->log->WaitForResolved(s_->cursor.positioned ? s_->cursor.frame : s_->cursor.from, 2, step);
  } else {
    std::this_thread::sleep_for(std::chrono::nanoseconds(step));
  }
}

bool GroupMember::CaughtUp() const { return GroupCursor(s_->h) >= s_->log->resolved(); }

Result<GroupInfo> GroupMember::Info(const EventStore& store, std::string_view name) {
  Log& log = const_cast<EventStore&>(store).log();
  auto f = ipc::AttachRegion(GroupPath(log, name), kGroupMagic, kGroupLayoutVersion, 0, {0600, false});
  if (!f.ok()) return f.status();
  auto* h = reinterpret_cast<GroupHeader*>(f->data());
  if (f->size() < kGroupHeaderSize || h->partitions < 1 || h->partitions > kMaxPartitions) {
    return DataLoss("group file of \"" + std::string(name) + "\" is damaged");
  }
  GroupInfo info;
  info.name = std::string(name);
  info.cursor = GroupCursor(h);
  for (uint32_t m = 0; m < kMaxMembers; ++m) {
    uint64_t lease = A(h->members[m].lease).load(std::memory_order_acquire);  // partner: Join's release
    uint64_t t = A(h->members[m].token).load(std::memory_order_relaxed);
    if (t != 0 && !LeaseEvicted(lease) && liveness::IsAlive(t)) ++info.members;
    info.handled += h->members[m].handled;
    info.failed += h->members[m].failed;
    info.parked += h->members[m].parked;
  }
  uint64_t leader = A(h->leader).load(std::memory_order_relaxed);  // a snapshot for the listing
  info.leader_pid = leader && liveness::IsAlive(leader) ? liveness::TokenPid(leader) : 0;
  info.dispatch_position = A(h->dispatch_position).load(std::memory_order_relaxed);
  return info;
}

Status GroupMember::Park(EventStore& store, std::string_view owner, const EventView& e, const Status& error, int attempts) {
  flatbuffers::FlatBufferBuilder b(512);
  schema::Uuid id(e.id.hi, e.id.lo);
  const std::string owner_s(owner);
  auto body = schema::CreateParkedEventDirect(b, owner_s.c_str(), e.position, std::string(e.stream).c_str(), e.type,
                                              &id, error.ToString().c_str(), attempts, getpid());
  const std::string stream = "$parked-" + owner_s;
  EventId env = EventId::Random();
  schema::Uuid env_id(env.hi, env.lo);
  auto envelope = schema::CreateEnvelopeDirect(b, &env_id, stream.c_str(), "parked", clock::WallNanos(), 1, &id, &id,
                                               nullptr, schema::EventBody::ParkedEvent, body.Union());
  schema::FinishEnvelopeBuffer(b, envelope);
  EventData d{EventId{e.id.hi ^ 0x5041524b45440000ull, e.id.lo ^ internal::HashBytes(owner, 0x7061726b)},
              static_cast<uint32_t>(schema::EventBody::ParkedEvent), 0,
              std::span<const uint8_t>(b.GetBufferPointer(), b.GetSize())};
  return store.AppendSystem(stream, ExpectedVersion::Any(), {&d, 1}).status();
}

Status GroupMember::ReadParked(const EventStore& store, std::string_view group, const EventStore::Visitor& visit) {
  return store.ReadStream("$parked-" + std::string(group), 0, visit);
}

}  // namespace hfe::store
