// Subscriptions: the slot table in the control region (changed under the admin flock), and the reader loop.
#include "store/subscription.h"

#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "ipc/clock.h"
#include "ipc/liveness.h"
#include "ipc/region.h"
#include "store/internal/admin_lock.h"
#include "store/internal/log.h"

namespace hfe::store {

using namespace format;

namespace {

std::atomic_ref<uint64_t> A(uint64_t& v) { return std::atomic_ref<uint64_t>(v); }
std::atomic_ref<uint32_t> A32(uint32_t& v) { return std::atomic_ref<uint32_t>(v); }

std::string_view SlotName(const SubscriptionSlot& s) {
  return std::string_view(s.name, std::min<uint32_t>(s.name_length, kMaxSubscriptionName));
}

}  // namespace

Status CheckFilter(const std::vector<uint32_t>& types, std::string_view prefix, uint64_t bitmap[4]) {
  if (prefix.size() > kMaxStreamPrefix) {
    return InvalidArgument("stream prefix must be at most " + std::to_string(kMaxStreamPrefix) + " bytes, found " +
                           std::to_string(prefix.size()));
  }
  if (!prefix.empty()) HFE_RETURN_IF_ERROR(EventStore::CheckName(prefix, "stream prefix", kMaxStreamPrefix));
  bitmap[0] = bitmap[1] = bitmap[2] = bitmap[3] = 0;
  for (uint32_t t : types) {
    if (t == 0 || t >= 256) return InvalidArgument("event type " + std::to_string(t) + " is out of range 1..255");
    bitmap[t >> 6] |= 1ull << (t & 63);
  }
  return Status::Ok();
}

SubscriptionSlot* FreeSubscriptionSlot(Log& log) {
  SubscriptionSlot* table = log.subscription_table();
  for (uint64_t i = 0; i < log.subscription_slots(); ++i) {
    if (A32(table[i].state).load(std::memory_order_acquire) == 0) return &table[i];
  }
  return nullptr;
}

Result<uint64_t> StartPosition(const Log& log, SubscriptionOptions::Start start, uint64_t position, int64_t timestamp_ns) {
  switch (start) {
    case SubscriptionOptions::Start::kBeginning: return uint64_t{0};
    case SubscriptionOptions::Start::kEnd: return log.resolved();
    case SubscriptionOptions::Start::kPosition: return position;
    case SubscriptionOptions::Start::kTimestamp: return log.PositionAtTime(timestamp_ns);
  }
  return uint64_t{0};
}

void PublishSubscriptionSlot(SubscriptionSlot* slot, std::string_view name, uint64_t start, const uint64_t types[4],
                             std::string_view prefix, uint8_t kind) {
  std::memset(static_cast<void*>(slot), 0, sizeof *slot);
  slot->name_length = static_cast<uint32_t>(name.size());
  std::memcpy(slot->name, name.data(), name.size());
  slot->cursor = start;
  slot->start_position = start;
  std::memcpy(slot->type_filter, types, sizeof slot->type_filter);
  slot->prefix_length = static_cast<uint16_t>(prefix.size());
  std::memcpy(slot->prefix, prefix.data(), prefix.size());
  slot->kind = kind;
  slot->created_at_ns = clock::WallNanos();
  // Release: pairs with FindSubscriptionSlot's acquire; the slot's fields are visible with its state.
  A32(slot->state).store(1, std::memory_order_release);
}

SubscriptionSlot* FindSubscriptionSlot(Log& log, std::string_view name) {
  SubscriptionSlot* table = log.subscription_table();
  for (uint64_t i = 0; i < log.subscription_slots(); ++i) {
    if (A32(table[i].state).load(std::memory_order_acquire) == 1 && SlotName(table[i]) == name) return &table[i];
  }
  return nullptr;
}

namespace {

SubscriptionSlot* FindSlot(Log& log, std::string_view name) { return FindSubscriptionSlot(log, name); }

std::vector<uint32_t> TypesOf(const SubscriptionSlot& s) {
  std::vector<uint32_t> t;
  for (uint32_t i = 0; i < 256; ++i) {
    if (s.type_filter[i >> 6] >> (i & 63) & 1) t.push_back(i);
  }
  return t;
}

}  // namespace

struct SubscriptionState {
  Log* log;
  SubscriptionSlot* slot;
  std::string name;
  std::string prefix;
  EventFilter filter;
  ReadCursor reader;
  int strategy;
  uint64_t delivered_since_ack = 0;
  uint64_t last_delivered = 0;  // position of the newest event delivered
};

Subscription::Subscription(std::unique_ptr<SubscriptionState> state) : s_(std::move(state)) {}

Subscription::~Subscription() {
  if (!s_) return;
  uint64_t mine = liveness::SelfToken();
  A(s_->slot->member_token).compare_exchange_strong(mine, 0, std::memory_order_acq_rel);
}

Result<std::unique_ptr<Subscription>> Subscription::Open(EventStore& store, std::string_view name,
                                                         const SubscriptionOptions& o) {
  if (name.empty() || name.size() > kMaxSubscriptionName) {
    return InvalidArgument("subscription name must be 1.." + std::to_string(kMaxSubscriptionName) + " bytes, found " +
                           std::to_string(name.size()));
  }
  uint64_t types[4];
  HFE_RETURN_IF_ERROR(CheckFilter(o.types, o.stream_prefix, types));
  Log& log = store.log();
  internal::AdminLock lock(log.dir());
  SubscriptionSlot* slot = FindSlot(log, name);
  if (slot && slot->kind == kSubscriptionGroup) {
    return FailedPrecondition("\"" + std::string(name) + "\" is a consumer group; join it as a group member");
  }
  if (slot) {
    bool same = std::memcmp(slot->type_filter, types, sizeof types) == 0 &&
                std::string_view(slot->prefix, std::min<uint16_t>(slot->prefix_length, kMaxStreamPrefix)) == o.stream_prefix;
    if (!same) {
      return FailedPrecondition("subscription \"" + std::string(name) + "\" exists with another filter (types " +
                                std::to_string(TypesOf(*slot).size()) + ", prefix \"" +
                                std::string(slot->prefix, std::min<uint16_t>(slot->prefix_length, kMaxStreamPrefix)) +
                                "\"); use the same filter, or delete it first");
    }
  } else {
    // A new name becomes part of the table (and of JSON listings): text only.
    HFE_RETURN_IF_ERROR(EventStore::CheckName(name, "subscription name", kMaxSubscriptionName));
    slot = FreeSubscriptionSlot(log);
    if (!slot) {
      return ResourceExhausted("the store holds " + std::to_string(log.subscription_slots()) +
                               " subscriptions already; delete one first");
    }
    auto start = StartPosition(log, o.start, o.position, o.timestamp_ns);
    if (!start.ok()) return start.status();
    PublishSubscriptionSlot(slot, name, *start, types, o.stream_prefix, kSubscriptionSingle);
  }
  // Attach as the member: free, or held by a process that died.
  uint64_t holder = A(slot->member_token).load(std::memory_order_acquire);
  if (holder != 0 && holder != liveness::SelfToken() && liveness::IsAlive(holder)) {
    return FailedPrecondition("subscription \"" + std::string(name) + "\" is attached by pid " +
                              std::to_string(liveness::TokenPid(holder)) +
                              "; one process per subscription (stop it, or use another subscription name)");
  }
  A(slot->member_token).store(liveness::SelfToken(), std::memory_order_release);
  slot->heartbeat_ns = clock::WallNanos();

  auto st = std::make_unique<SubscriptionState>();
  st->log = &log;
  st->slot = slot;
  st->name = std::string(name);
  st->prefix.assign(slot->prefix, std::min<uint16_t>(slot->prefix_length, kMaxStreamPrefix));
  std::memcpy(st->filter.types, slot->type_filter, sizeof st->filter.types);
  st->filter.prefix = st->prefix;
  st->reader.from = A(slot->cursor).load(std::memory_order_acquire);
  st->strategy = o.wait == WaitStrategy::kSpin ? 0 : o.wait == WaitStrategy::kYield ? 1 : 2;
  return std::unique_ptr<Subscription>(new Subscription(std::move(st)));
}

Result<size_t> Subscription::Poll(const EventStore::Visitor& visit, size_t max) {
  SubscriptionState* st = s_.get();
  auto n = s_->log->ReadBatch(s_->reader, max, s_->filter, [st, &visit](const EventView& e) {
    if (!visit(e)) return false;
    st->last_delivered = e.position;
    return true;
  });
  if (n.ok() && *n > 0) {
    s_->slot->delivered += *n;
    s_->delivered_since_ack += *n;
  }
  return n;
}

void Subscription::Wait(int64_t timeout_ns) {
  s_->slot->heartbeat_ns = clock::WallNanos();
  if (!s_->reader.positioned) {
    // Find the frame the next event will come from; nothing is delivered.
    (void)s_->log->ReadBatch(s_->reader, 0, s_->filter, [](const EventView&) { return true; });
  }
  s_->log->WaitForResolved(s_->reader.frame, s_->strategy, timeout_ns);
}

void Subscription::AckDelivered() {
  uint64_t to = s_->reader.positioned ? s_->reader.from : A(s_->slot->cursor).load(std::memory_order_relaxed);
  // Release: pairs with readers of the cursor (list, restart); the handler's effects precede the ack.
  if (to > A(s_->slot->cursor).load(std::memory_order_relaxed)) A(s_->slot->cursor).store(to, std::memory_order_release);
  s_->slot->acked += s_->delivered_since_ack;
  s_->delivered_since_ack = 0;
}

void Subscription::Ack(uint64_t position) {
  const uint64_t read_to = s_->reader.positioned ? s_->reader.from : position + 1;
  uint64_t to = std::min(position + 1, read_to);
  if (position >= s_->last_delivered) {
    // Everything delivered so far is acknowledged: the cursor may also pass what the filter skipped after it.
    to = std::max(to, read_to);
    A(s_->slot->acked).fetch_add(s_->delivered_since_ack, std::memory_order_relaxed);
    s_->delivered_since_ack = 0;
  }
  if (to > A(s_->slot->cursor).load(std::memory_order_relaxed)) A(s_->slot->cursor).store(to, std::memory_order_release);
}

const std::string& Subscription::name() const { return s_->name; }
uint64_t Subscription::cursor() const { return A(s_->slot->cursor).load(std::memory_order_acquire); }
uint64_t Subscription::lag_bytes() const {
  uint64_t r = s_->log->resolved(), c = cursor();
  return r > c ? r - c : 0;
}

Result<std::vector<SubscriptionInfo>> Subscription::List(const EventStore& store) {
  Log& log = const_cast<EventStore&>(store).log();
  std::vector<SubscriptionInfo> out;
  SubscriptionSlot* table = log.subscription_table();
  uint64_t r = log.resolved();
  for (uint64_t i = 0; i < log.subscription_slots(); ++i) {
    SubscriptionSlot& s = table[i];
    if (A32(s.state).load(std::memory_order_acquire) != 1) continue;
    SubscriptionInfo info;
    info.name = std::string(SlotName(s));
    info.cursor = A(s.cursor).load(std::memory_order_acquire);
    info.lag_bytes = r > info.cursor ? r - info.cursor : 0;
    info.delivered = s.delivered;
    info.acked = s.acked;
    info.parked = s.parked;
    uint64_t m = A(s.member_token).load(std::memory_order_acquire);
    info.member_pid = m ? liveness::TokenPid(m) : 0;
    info.member_alive = m != 0 && liveness::IsAlive(m);
    info.types = TypesOf(s);
    info.stream_prefix.assign(s.prefix, std::min<uint16_t>(s.prefix_length, kMaxStreamPrefix));
    info.group = s.kind == kSubscriptionGroup;
    out.push_back(std::move(info));
  }
  return out;
}

Status Subscription::Delete(EventStore& store, std::string_view name) {
  Log& log = store.log();
  internal::AdminLock lock(log.dir());
  SubscriptionSlot* slot = FindSlot(log, name);
  if (!slot) return NotFound("no subscription \"" + std::string(name) + "\" in '" + log.dir() + "'");
  if (slot->kind == kSubscriptionGroup) {
    return FailedPrecondition("\"" + std::string(name) + "\" is a consumer group; groups are not deleted yet");
  }
  uint64_t m = A(slot->member_token).load(std::memory_order_acquire);
  if (m != 0 && m != liveness::SelfToken() && liveness::IsAlive(m)) {
    return FailedPrecondition("subscription \"" + std::string(name) + "\" is attached by pid " +
                              std::to_string(liveness::TokenPid(m)) + "; stop it first");
  }
  A32(slot->state).store(0, std::memory_order_release);
  return Status::Ok();
}

}  // namespace hfe::store
