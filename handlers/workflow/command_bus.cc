// The command bus: creating and attaching `rings/commands.bus`, sending, receiving, parking.
#include "handlers/workflow/command_bus.h"

#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "handlers/workflow/command_bus_format.h"
#include "ipc/clock.h"
#include "ipc/futex.h"
#include "ipc/liveness.h"
#include "ipc/region.h"
#include "ring/spsc_ring.h"

namespace hfe::handlers {

using namespace bus_format;
using SlotRing = ring::SpscRing<Slot>;

struct BusState {
  ipc::MappedFile file;
  BusHeader* h = nullptr;
  uint64_t token = 0;
  int producer = -1;                    // the sender's slot
  std::vector<SlotRing> rings;          // the receiver's view of every sender ring
  std::optional<SlotRing> own;          // the sender's ring
  int64_t send_timeout_ns = 0;
  uint64_t rejected = 0;
  size_t next = 0;                      // the receiver's round-robin start
};

namespace {

std::atomic_ref<uint64_t> A64(uint64_t& w) { return std::atomic_ref<uint64_t>(w); }
std::atomic<uint32_t>* Word(uint32_t& w) { return reinterpret_cast<std::atomic<uint32_t>*>(&w); }
void* RingMemory(BusHeader* h, uint32_t i) {
  return reinterpret_cast<uint8_t*>(h) + kBusHeaderSize + static_cast<size_t>(i) * h->ring_bytes;
}

std::string BusPath(const std::string& dir) { return dir + "/rings/commands.bus"; }

// Opens the bus of a store, creating it on first use (created in a private file, then linked into place so
// a racing creator finds the finished one).
Result<std::unique_ptr<BusState>> OpenBus(const std::string& dir, const CommandBusOptions& o, bool create) {
  HFE_RETURN_IF_ERROR(ipc::EnsureDirectory(dir + "/rings", create, 0700));
  const std::string path = BusPath(dir);
  struct stat sb;
  if (create && ::lstat(path.c_str(), &sb) != 0) {
    if (o.ring_capacity < 2 || (o.ring_capacity & (o.ring_capacity - 1)) != 0 || o.ring_capacity > (1u << 20)) {
      return InvalidArgument("command bus ring capacity must be a power of two from 2 to 2^20, found " +
                             std::to_string(o.ring_capacity));
    }
    const uint64_t ring_bytes = (SlotRing::BytesFor(o.ring_capacity) + 4095) & ~uint64_t{4095};
    const size_t size = kBusHeaderSize + kMaxProducers * ring_bytes;
    const std::string tmp = path + "." + std::to_string(::getpid()) + ".tmp";
    ::unlink(tmp.c_str());
    {
      auto f = ipc::MappedFile::Create(tmp, size, {0600, true});
      if (!f.ok()) return f.status();
      auto* h = reinterpret_cast<BusHeader*>(f->data());
      ipc::InitHeader(h, size, kBusMagic, kBusHeaderSize);
      h->max_producers = kMaxProducers;
      h->slot_size = sizeof(Slot);
      h->ring_capacity = o.ring_capacity;
      h->ring_bytes = ring_bytes;
      for (uint32_t i = 0; i < kMaxProducers; ++i) {
        auto r = SlotRing::Create(RingMemory(h, i), ring_bytes, o.ring_capacity);
        if (!r.ok()) return r.status();
      }
      ipc::Publish(h, kBusLayoutVersion);
    }
    if (::link(tmp.c_str(), path.c_str()) != 0 && errno != EEXIST) {
      int err = errno;
      ::unlink(tmp.c_str());
      return ErrnoStatus("link '" + path + "'", err);
    }
    ::unlink(tmp.c_str());
  }
  auto f = ipc::AttachRegion(path, kBusMagic, kBusLayoutVersion, 1'000'000'000, {0600, true});
  if (!f.ok()) return f.status();
  auto s = std::make_unique<BusState>();
  s->file = std::move(*f);
  s->h = reinterpret_cast<BusHeader*>(s->file.data());
  BusHeader* h = s->h;
  // Shared memory is untrusted: check the geometry before using an offset.
  if (h->max_producers != kMaxProducers || h->slot_size != sizeof(Slot) || h->ring_capacity < 2 ||
      h->ring_bytes < SlotRing::BytesFor(h->ring_capacity) ||
      kBusHeaderSize + kMaxProducers * h->ring_bytes != s->file.size()) {
    return DataLoss("command bus '" + path + "' is damaged (geometry); stop its users and remove the file");
  }
  s->token = liveness::SelfToken();
  s->send_timeout_ns = std::max<int64_t>(0, o.send_timeout_ms) * 1'000'000;
  return s;
}

// Takes a lease word that is free or held by a dead process. A word holding this process's own token is
// taken (by another sender or receiver of this process: a ring has one producer and one consumer).
bool TakeLease(uint64_t& word, uint64_t token) {
  uint64_t cur = A64(word).load(std::memory_order_acquire);
  for (;;) {
    if (cur == token) return false;
    if (cur != 0 && liveness::IsAlive(cur)) return false;
    if (A64(word).compare_exchange_weak(cur, token, std::memory_order_acq_rel)) return true;
  }
}

void ReleaseLease(uint64_t& word, uint64_t token) {
  uint64_t cur = token;
  A64(word).compare_exchange_strong(cur, 0, std::memory_order_acq_rel);
}

}  // namespace

std::span<const uint8_t> FinishCommand(flatbuffers::FlatBufferBuilder& b, schema::CommandBody type,
                                       flatbuffers::Offset<void> body, const store::EventId& correlation,
                                       uint64_t causation_position) {
  store::EventId id = store::EventId::Random();
  schema::Uuid cid(id.hi, id.lo), corr(correlation.hi, correlation.lo);
  auto c = schema::CreateCommand(b, &cid, &corr, causation_position, clock::WallNanos(), type, body);
  b.Finish(c);
  return {b.GetBufferPointer(), b.GetSize()};
}

const char* CommandTypeName(schema::CommandBody type) {
  if (type == schema::CommandBody::NONE || type > schema::CommandBody::MAX) return "Unknown";
  return schema::EnumNameCommandBody(type);
}

CommandSender::CommandSender(std::unique_ptr<BusState> s) : s_(std::move(s)) {}
CommandSender::~CommandSender() {
  if (s_ && s_->producer >= 0) ReleaseLease(s_->h->producers[s_->producer].token, s_->token);
}

Result<std::unique_ptr<CommandSender>> CommandSender::Open(const std::string& store_dir, const CommandBusOptions& o) {
  auto s = OpenBus(store_dir, o, /*create=*/true);
  if (!s.ok()) return s.status();
  BusState& st = **s;
  for (uint32_t i = 0; i < kMaxProducers && st.producer < 0; ++i) {
    if (TakeLease(st.h->producers[i].token, st.token)) st.producer = static_cast<int>(i);
  }
  if (st.producer < 0) {
    return ResourceExhausted("the command bus has " + std::to_string(kMaxProducers) +
                             " live senders already; stop a workflow handler process first");
  }
  auto r = SlotRing::Attach(RingMemory(st.h, st.producer), st.h->ring_bytes);
  if (!r.ok()) return r.status();
  st.own.emplace(std::move(*r));
  return std::unique_ptr<CommandSender>(new CommandSender(std::move(*s)));
}

Status CommandSender::Send(std::span<const uint8_t> command) {
  if (command.size() > kMaxCommandBytes) {
    return InvalidArgument("command of " + std::to_string(command.size()) + " bytes does not fit a bus slot (at most " +
                           std::to_string(kMaxCommandBytes) + "); shorten its ids");
  }
  BusState& s = *s_;
  Slot slot;
  slot.size = static_cast<uint32_t>(command.size());
  slot.reserved = 0;
  std::memcpy(slot.bytes, command.data(), command.size());
  ProducerSlot& ps = s.h->producers[s.producer];
  if (!s.own->TryPush(slot)) {
    A64(ps.full).fetch_add(1, std::memory_order_relaxed);
    const int64_t deadline = clock::MonotonicNanos() + s.send_timeout_ns;
    int spins = 0;
    while (!s.own->TryPush(slot)) {
      if (clock::MonotonicNanos() > deadline) {
        uint64_t rx = A64(s.h->consumer).load(std::memory_order_acquire);
        return Status(StatusCode::kUnavailable,
                      rx && liveness::IsAlive(rx)
                          ? "command bus full for " + std::to_string(s.send_timeout_ns / 1'000'000) +
                                " ms: the command handler (pid " + std::to_string(liveness::TokenPid(rx)) +
                                ") is not keeping up"
                          : "command bus full and no command handler attached; start `hostfactory provider`");
      }
      if (++spins < 64) {
        sched_yield();
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    }
  }
  A64(ps.pushed).fetch_add(1, std::memory_order_relaxed);
  // Ring the doorbell; wake the receiver only when it parked (seq_cst pairs with its sleeping flag).
  std::atomic_ref<uint32_t>(s.h->doorbell).fetch_add(1, std::memory_order_seq_cst);
  if (std::atomic_ref<uint32_t>(s.h->sleeping).load(std::memory_order_seq_cst) != 0) {
    futex::Wake(Word(s.h->doorbell));
  }
  return Status::Ok();
}

CommandReceiver::CommandReceiver(std::unique_ptr<BusState> s) : s_(std::move(s)) {}
CommandReceiver::~CommandReceiver() {
  if (s_) ReleaseLease(s_->h->consumer, s_->token);
}

Result<std::unique_ptr<CommandReceiver>> CommandReceiver::Open(const std::string& store_dir,
                                                               const CommandBusOptions& o) {
  auto s = OpenBus(store_dir, o, /*create=*/true);
  if (!s.ok()) return s.status();
  BusState& st = **s;
  if (!TakeLease(st.h->consumer, st.token)) {
    uint64_t holder = A64(st.h->consumer).load(std::memory_order_acquire);
    return FailedPrecondition("another command handler (pid " + std::to_string(liveness::TokenPid(holder)) +
                              ") serves this store's command bus; stop it first");
  }
  for (uint32_t i = 0; i < kMaxProducers; ++i) {
    auto r = SlotRing::Attach(RingMemory(st.h, i), st.h->ring_bytes);
    if (!r.ok()) return r.status();
    st.rings.push_back(std::move(*r));
  }
  return std::unique_ptr<CommandReceiver>(new CommandReceiver(std::move(*s)));
}

size_t CommandReceiver::Receive(const Visitor& visit, size_t max) {
  BusState& s = *s_;
  s.h->consumer_heartbeat_ns = clock::WallNanos();
  size_t taken = 0;
  Slot slot;
  // Round-robin over the sender rings, one command at a time, so one busy sender cannot starve the others.
  bool any = true;
  while (taken < max && any) {
    any = false;
    for (size_t k = 0; k < s.rings.size() && taken < max; ++k) {
      size_t i = (s.next + k) % s.rings.size();
      // Peek, act, then consume: a receiver killed while acting leaves the command for its successor
      // (at-least-once; command handlers are idempotent).
      if (!s.rings[i].TryPeek(&slot)) continue;
      any = true;
      ++taken;
      flatbuffers::Verifier v(slot.bytes, std::min<uint32_t>(slot.size, kMaxCommandBytes), flatbuffers::Verifier::Options{});
      if (slot.size == 0 || slot.size > kMaxCommandBytes || !schema::VerifyCommandBuffer(v)) {
        ++s.rejected;
      } else {
        visit(*schema::GetCommand(slot.bytes));
      }
      s.rings[i].Consume();
      A64(s.h->received).fetch_add(1, std::memory_order_relaxed);
    }
    s.next = (s.next + 1) % s.rings.size();
  }
  return taken;
}

void CommandReceiver::Wait(int64_t timeout_ns) {
  BusState& s = *s_;
  std::atomic_ref<uint32_t> sleeping(s.h->sleeping);
  uint32_t seen = std::atomic_ref<uint32_t>(s.h->doorbell).load(std::memory_order_seq_cst);
  sleeping.store(1, std::memory_order_seq_cst);
  bool empty = true;
  for (auto& r : s.rings) empty = empty && r.Size() == 0;
  if (empty) futex::Wait(Word(s.h->doorbell), seen, timeout_ns);
  sleeping.store(0, std::memory_order_seq_cst);
}

uint64_t CommandReceiver::rejected() const { return s_->rejected; }

Result<CommandBusInfo> InspectCommandBus(const std::string& store_dir) {
  CommandBusInfo info;
  struct stat sb;
  if (::lstat(BusPath(store_dir).c_str(), &sb) != 0) return info;
  auto s = OpenBus(store_dir, {}, /*create=*/false);
  if (!s.ok()) return s.status();
  BusState& st = **s;
  info.exists = true;
  uint64_t rx = A64(st.h->consumer).load(std::memory_order_acquire);
  if (rx && liveness::IsAlive(rx)) info.receiver_pid = liveness::TokenPid(rx);
  info.received = A64(st.h->received).load(std::memory_order_relaxed);
  for (uint32_t i = 0; i < kMaxProducers; ++i) {
    ProducerSlot& p = st.h->producers[i];
    auto r = SlotRing::Attach(RingMemory(st.h, i), st.h->ring_bytes);
    if (!r.ok()) return r.status();
    uint64_t pending = r->Size();
    uint64_t pushed = A64(p.pushed).load(std::memory_order_relaxed);
    info.pending += pending;
    if (pushed == 0 && pending == 0) continue;
    uint64_t tok = A64(p.token).load(std::memory_order_acquire);
    info.senders.push_back({liveness::TokenPid(tok), tok != 0 && liveness::IsAlive(tok), pushed,
                            A64(p.full).load(std::memory_order_relaxed), pending});
  }
  return info;
}

}  // namespace hfe::handlers
