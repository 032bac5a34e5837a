// Ring throughput between two threads, 16-byte items: SpscRing and MpmcRing (in a shared mapping) beside
// boost::lockfree::spsc_queue and a mutex-protected deque, measured in the same run.
#include <benchmark/benchmark.h>
#include <sys/mman.h>

#include <boost/lockfree/spsc_queue.hpp>
#include <deque>
#include <mutex>
#include <thread>

#include "ring/mpmc_ring.h"
#include "ring/spsc_ring.h"

namespace {

struct Item {
  uint64_t a, b;
};
constexpr uint64_t kCapacity = 4096;
constexpr uint64_t kTransfer = 1 << 20;  // items moved per benchmark iteration

// Moves kTransfer items from a producer thread to this thread through push/pop callables.
template <typename Push, typename Pop>
void Transfer(benchmark::State& state, Push push, Pop pop) {
  for (auto _ : state) {
    std::thread producer([&] {
      for (uint64_t i = 0; i < kTransfer;) {
        if (push(Item{i, i})) ++i;
      }
    });
    uint64_t got = 0, sum = 0;
    Item it;
    while (got < kTransfer) {
      if (pop(&it)) {
        sum += it.a;
        ++got;
      }
    }
    producer.join();
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * kTransfer);
}

void* SharedMemory(size_t n) {
  return ::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
}

void BM_SpscRing(benchmark::State& state) {
  size_t n = hfe::ring::SpscRing<Item>::BytesFor(kCapacity);
  void* mem = SharedMemory(n);
  auto producer_side = hfe::ring::SpscRing<Item>::Create(mem, n, kCapacity);
  auto consumer_side = hfe::ring::SpscRing<Item>::Attach(mem, n);
  Transfer(state, [&](const Item& v) { return producer_side->TryPush(v); },
           [&](Item* v) { return consumer_side->TryPop(v); });
  ::munmap(mem, n);
}
BENCHMARK(BM_SpscRing)->UseRealTime();

void BM_MpmcRing(benchmark::State& state) {
  size_t n = hfe::ring::MpmcRing<Item>::BytesFor(kCapacity);
  void* mem = SharedMemory(n);
  auto ring = hfe::ring::MpmcRing<Item>::Create(mem, n, kCapacity);
  Transfer(state, [&](const Item& v) { return ring->TryPush(v); }, [&](Item* v) { return ring->TryPop(v); });
  ::munmap(mem, n);
}
BENCHMARK(BM_MpmcRing)->UseRealTime();

void BM_BoostSpscQueue(benchmark::State& state) {
  boost::lockfree::spsc_queue<Item, boost::lockfree::capacity<kCapacity>> q;
  Transfer(state, [&](const Item& v) { return q.push(v); }, [&](Item* v) { return q.pop(*v); });
}
BENCHMARK(BM_BoostSpscQueue)->UseRealTime();

void BM_MutexQueue(benchmark::State& state) {
  std::mutex mu;
  std::deque<Item> q;
  Transfer(
      state,
      [&](const Item& v) {
        std::lock_guard<std::mutex> l(mu);
        if (q.size() >= kCapacity) return false;
        q.push_back(v);
        return true;
      },
      [&](Item* v) {
        std::lock_guard<std::mutex> l(mu);
        if (q.empty()) return false;
        *v = q.front();
        q.pop_front();
        return true;
      });
}
BENCHMARK(BM_MutexQueue)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
