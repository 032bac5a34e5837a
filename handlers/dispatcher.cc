// Dispatcher: reader -> per-worker moodycamel queues -> handlers; completion tracking for acks.
#include "handlers/dispatcher.h"

#include <concurrentqueue/blockingconcurrentqueue.h>

#include <chrono>
#include <exception>

#include "handlers/envelope.h"
#include "ipc/clock.h"
#include "store/consumer_group.h"

namespace hfe::handlers {

namespace {

// An event in flight: finished when every handler it was given to is done with it.
struct InFlight {
  InFlight(const store::EventView& v, const schema::Envelope* e) : view(v), envelope(e), remaining(0) {}
  store::EventView view;
  const schema::Envelope* envelope;
  std::atomic<int> remaining;
};

struct Task {
  InFlight* event;
  size_t handler;  // index into DispatcherState::slots
};

struct Slot {
  Handler* handler;
  size_t worker;
  std::atomic<uint64_t> processed{0}, failed{0}, retried{0}, parked{0}, skipped{0};
  Histogram latency;
  std::mutex by_type_mu;
  std::map<std::string, uint64_t> by_type;
};

}  // namespace

struct DispatcherState {
  store::EventStore* store;
  DispatcherOptions options;
  std::vector<std::unique_ptr<Slot>> slots;
  std::vector<std::vector<size_t>> slots_by_type;  // event type -> slots of its handlers (built once)
  std::vector<std::unique_ptr<moodycamel::BlockingConcurrentQueue<Task>>> queues;
  std::vector<std::thread> workers;
  std::atomic<bool> stop{false};
  std::deque<InFlight> in_flight;  // appended and popped by the reader thread only
  uint64_t completed_through = 0;

  void Work(size_t w);
  void Run(Slot& slot, InFlight& ev);
};

Dispatcher::Dispatcher(store::EventStore& store, const Registry& registry, const DispatcherOptions& options)
    : s_(std::make_unique<DispatcherState>()) {
  s_->store = &store;
  s_->options = options;
  const size_t workers = static_cast<size_t>(std::max(1, options.workers));
  for (size_t w = 0; w < workers; ++w) s_->queues.push_back(std::make_unique<moodycamel::BlockingConcurrentQueue<Task>>());
  std::map<const Handler*, size_t> slot_of;
  for (const auto& h : registry.handlers()) {
    auto slot = std::make_unique<Slot>();
    slot->handler = h.get();
    slot->worker = s_->slots.size() % workers;
    slot_of[h.get()] = s_->slots.size();
    s_->slots.push_back(std::move(slot));
  }
  s_->slots_by_type.resize(256);
  for (uint32_t t = 0; t < 256; ++t) {
    for (Handler* h : registry.For(t)) s_->slots_by_type[t].push_back(slot_of[h]);
  }
  for (size_t w = 0; w < workers; ++w) s_->workers.emplace_back([this, w] { s_->Work(w); });
}

Dispatcher::~Dispatcher() {
  Drain();
  s_->stop.store(true);
  for (auto& t : s_->workers) t.join();
}

void Dispatcher::Dispatch(const store::EventView& view) {
  const schema::Envelope* env = VerifiedEnvelope(view.payload);
  static const std::vector<size_t> kNone;
  const auto& slots = view.type < s_->slots_by_type.size() ? s_->slots_by_type[view.type] : kNone;
  s_->in_flight.emplace_back(view, env);
  InFlight& ev = s_->in_flight.back();
  if (!env || slots.empty()) return;  // nothing to do: finished at once
  ev.remaining.store(static_cast<int>(slots.size()), std::memory_order_relaxed);
  for (size_t i : slots) s_->queues[s_->slots[i]->worker]->enqueue(Task{&ev, i});
}

uint64_t Dispatcher::CompletedThrough() {
  // Acquire: pairs with the worker's release decrement; the handler's effects are visible.
  while (!s_->in_flight.empty() && s_->in_flight.front().remaining.load(std::memory_order_acquire) == 0) {
    s_->completed_through = s_->in_flight.front().view.position + 1;
    s_->in_flight.pop_front();
  }
  uint64_t through = s_->completed_through;
  for (const auto& slot : s_->slots) {
    uint64_t durable = slot->handler->DurableThrough();
    if (durable != UINT64_MAX) through = std::min(through, durable + 1);
  }
  return through;
}

Status Dispatcher::Flush() {
  Status first = Status::Ok();
  for (const auto& slot : s_->slots) {
    Status st = slot->handler->Flush();
    if (!st.ok() && first.ok()) first = st;
  }
  return first;
}

void Dispatcher::Drain() {
  while (!s_->in_flight.empty()) {
    CompletedThrough();
    if (!s_->in_flight.empty()) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

void DispatcherState::Work(size_t w) {
  Task t;
  while (!stop.load(std::memory_order_relaxed)) {
    if (!queues[w]->wait_dequeue_timed(t, std::chrono::milliseconds(50))) continue;
    Run(*slots[t.handler], *t.event);
    // Release: pairs with CompletedThrough()'s acquire.
    t.event->remaining.fetch_sub(1, std::memory_order_release);
  }
}

void DispatcherState::Run(Slot& slot, InFlight& ev) {
  Handler& h = *slot.handler;
  const char* type = EventTypeName(ev.view.type);
  Event e{ev.view, *ev.envelope, type ? type : "Unknown"};
  uint64_t cp = h.Checkpoint();
  if (cp != 0 && ev.view.position <= cp) {
    slot.skipped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  bool wanted = true;
  try {
    wanted = h.CanHandle(e);
  } catch (...) {
    wanted = true;  // let Handle() decide; a throwing CanHandle must not drop the event silently
  }
  if (!wanted) return;
  Status st;
  int attempts = 0;
  int64_t backoff = options.backoff_initial_us;
  for (; attempts < std::max(1, options.retry_budget); ++attempts) {
    if (attempts > 0) {
      slot.retried.fetch_add(1, std::memory_order_relaxed);
      std::this_thread::sleep_for(std::chrono::microseconds(backoff));
      backoff *= 2;
    }
    int64_t t0 = clock::MonotonicNanos();
    try {
      st = h.Handle(e);
    } catch (const std::exception& x) {
      st = Status(StatusCode::kInternal, std::string("handler threw: ") + x.what());
    } catch (...) {
      st = Status(StatusCode::kInternal, "handler threw a non-standard exception");
    }
    slot.latency.Record(static_cast<uint64_t>(clock::MonotonicNanos() - t0));
    if (st.ok()) break;
    slot.failed.fetch_add(1, std::memory_order_relaxed);
  }
  if (st.ok()) {
    slot.processed.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard<std::mutex> lock(slot.by_type_mu);
    ++slot.by_type[e.type_name];
    return;
  }
  try {
    h.OnError(e, st);
  } catch (...) {
  }
  std::string owner = options.parking_owner + "." + std::string(h.name());
  if (store::GroupMember::Park(*store, owner, ev.view, st, attempts).ok()) slot.parked.fetch_add(1, std::memory_order_relaxed);
}

std::vector<HandlerStats> Dispatcher::Stats() const {
  std::vector<HandlerStats> out;
  for (const auto& slot : s_->slots) {
    HandlerStats h;
    h.handler = std::string(slot->handler->name());
    h.processed = slot->processed.load();
    h.failed = slot->failed.load();
    h.retried = slot->retried.load();
    h.parked = slot->parked.load();
    h.skipped = slot->skipped.load();
    uint64_t attempts = h.processed + h.failed;
    h.success_rate = attempts ? static_cast<double>(h.processed) / static_cast<double>(attempts) : 1.0;
    h.latency_p50_ns = slot->latency.Percentile(0.5);
    h.latency_p99_ns = slot->latency.Percentile(0.99);
    h.latency_max_ns = slot->latency.max();
    {
      std::lock_guard<std::mutex> lock(slot->by_type_mu);
      h.processed_by_type = slot->by_type;
    }
    out.push_back(std::move(h));
  }
  return out;
}

}  // namespace hfe::handlers
