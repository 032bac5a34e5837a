// Rings across processes (fork, a shared mapping): the SPSC ring between two processes keeps order; the
// MPMC ring with two producer and two consumer processes loses and duplicates nothing, and each consumer
// sees each producer's items in order. Children are killed and reaped if the test fails.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <atomic>

#include "ring/mpmc_ring.h"
#include "ring/spsc_ring.h"
#include "tests/testutil.h"

namespace hfe::ring {
namespace {

struct Item {
  uint32_t producer;
  uint32_t pad;
  uint64_t seq;
};

struct Shared {
  void* mem;
  size_t size;
  explicit Shared(size_t n) : size(n) {
    mem = ::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  }
  ~Shared() { ::munmap(mem, size); }
};

TEST(RingMultiProcessTest, SpscAcrossProcessesKeepsOrder) {
  constexpr uint64_t kItems = 1'000'000;
  Shared shm(SpscRing<Item>::BytesFor(4096));
  ASSERT_TRUE(SpscRing<Item>::Create(shm.mem, shm.size, 4096).ok());
  hfe::testing::Children kids;
  pid_t producer = kids.Spawn([&] {
    auto r = SpscRing<Item>::Attach(shm.mem, shm.size);
    if (!r.ok()) return 1;
    for (uint64_t s = 0; s < kItems;) s += r->TryPush(Item{1, 0, s});
    return 0;
  });
  auto r = SpscRing<Item>::Attach(shm.mem, shm.size);
  ASSERT_TRUE(r.ok());
  uint64_t expect = 0;
  bool in_order = true;
  Item out[64];
  while (expect < kItems) {
    size_t n = r->TryPopBatch(out);
    for (size_t i = 0; i < n; ++i) in_order &= out[i].seq == expect++;
  }
  EXPECT_EQ(0, kids.Wait(producer));
  EXPECT_TRUE(in_order);
}

TEST(RingMultiProcessTest, MpmcAcrossProcessesLosesAndDuplicatesNothing) {
  constexpr int kProducers = 2, kConsumers = 2;
  constexpr uint64_t kPerProducer = 250'000;
  Shared shm(MpmcRing<Item>::BytesFor(1024));
  Shared seen(kProducers * kPerProducer);  // one counter byte per item
  Shared consumed(64);
  ASSERT_TRUE(MpmcRing<Item>::Create(shm.mem, shm.size, 1024).ok());
  auto* counts = static_cast<std::atomic<uint8_t>*>(seen.mem);
  auto* total = static_cast<std::atomic<uint64_t>*>(consumed.mem);
  hfe::testing::Children kids;
  std::vector<pid_t> pids;
  for (int p = 0; p < kProducers; ++p) {
    pids.push_back(kids.Spawn([&, p] {
      auto r = MpmcRing<Item>::Attach(shm.mem, shm.size);
      if (!r.ok()) return 1;
      for (uint64_t s = 0; s < kPerProducer;) s += r->TryPush(Item{static_cast<uint32_t>(p), 0, s});
      return 0;
    }));
  }
  for (int c = 0; c < kConsumers; ++c) {
    pids.push_back(kids.Spawn([&] {
      auto r = MpmcRing<Item>::Attach(shm.mem, shm.size);
      if (!r.ok()) return 1;
      int64_t last[kProducers] = {-1, -1};
      Item it;
      while (total->load(std::memory_order_relaxed) < kProducers * kPerProducer) {
        if (!r->TryPop(&it)) continue;
        if (it.producer >= kProducers || it.seq >= kPerProducer) return 2;
        if (static_cast<int64_t>(it.seq) <= last[it.producer]) return 3;  // per-producer order broken
        last[it.producer] = static_cast<int64_t>(it.seq);
        counts[it.producer * kPerProducer + it.seq].fetch_add(1, std::memory_order_relaxed);
        total->fetch_add(1, std::memory_order_relaxed);
      }
      return 0;
    }));
  }
  for (pid_t p : pids) EXPECT_EQ(0, kids.Wait(p));
  uint64_t once = 0;
  for (uint64_t i = 0; i < kProducers * kPerProducer; ++i) once += counts[i].load() == 1;
  EXPECT_EQ(kProducers * kPerProducer, once);
}

}  // namespace
}  // namespace hfe::ring
