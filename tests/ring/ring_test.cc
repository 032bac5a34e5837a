// Rings in one process: semantics (full, empty, wrap-around, batches), header validation of untrusted
// memory, and multi-thread stress that checks per-producer order and that nothing is lost or duplicated.
// This binary also runs under ThreadSanitizer in CI.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#include "ring/mpmc_ring.h"
#include "ring/spsc_ring.h"

namespace hfe::ring {
namespace {

struct Item {
  uint32_t producer;
  uint32_t pad;
  uint64_t seq;
};

struct Buffer {
  explicit Buffer(size_t n) : size(n), mem(static_cast<uint8_t*>(std::aligned_alloc(64, (n + 63) / 64 * 64))) {
    std::memset(mem, 0, size);
  }
  ~Buffer() { std::free(mem); }
  size_t size;
  uint8_t* mem;
};

template <typename R>
class RingTest : public ::testing::Test {};
using RingTypes = ::testing::Types<SpscRing<Item>, MpmcRing<Item>>;
TYPED_TEST_SUITE(RingTest, RingTypes);

TYPED_TEST(RingTest, FullEmptyAndWrapAround) {
  Buffer b(TypeParam::BytesFor(8));
  auto r = TypeParam::Create(b.mem, b.size, 8);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  Item out;
  EXPECT_FALSE(r->TryPop(&out));
  uint64_t next_push = 0, next_pop = 0;
  for (int lap = 0; lap < 100; ++lap) {  // 100 laps of a ring of 8: the indices wrap many times
    while (r->TryPush(Item{0, 0, next_push})) ++next_push;
    EXPECT_EQ(8u, next_push - next_pop);  // full at exactly its capacity
    EXPECT_EQ(8u, r->Size());
    for (int i = 0; i < 5; ++i) {
      ASSERT_TRUE(r->TryPop(&out));
      EXPECT_EQ(next_pop++, out.seq);
    }
  }
  while (r->TryPop(&out)) EXPECT_EQ(next_pop++, out.seq);
  EXPECT_EQ(next_push, next_pop);
  EXPECT_EQ(0u, r->Size());
}

TYPED_TEST(RingTest, BatchesMoveWhatFits) {
  Buffer b(TypeParam::BytesFor(16));
  auto r = TypeParam::Create(b.mem, b.size, 16);
  ASSERT_TRUE(r.ok());
  std::vector<Item> in(20);
  for (uint64_t i = 0; i < in.size(); ++i) in[i] = Item{1, 0, i};
  EXPECT_EQ(16u, r->TryPushBatch(in));
  EXPECT_EQ(0u, r->TryPushBatch(std::span<const Item>(in.data() + 16, 4)));
  std::vector<Item> out(10);
  EXPECT_EQ(10u, r->TryPopBatch(out));
  for (uint64_t i = 0; i < 10; ++i) EXPECT_EQ(i, out[i].seq);
  EXPECT_EQ(4u, r->TryPushBatch(std::span<const Item>(in.data() + 16, 4)));
  EXPECT_EQ(10u, r->TryPopBatch(out));
  for (uint64_t i = 0; i < 10; ++i) EXPECT_EQ(10 + i, out[i].seq);
  EXPECT_EQ(0u, r->TryPopBatch(out));
}

TYPED_TEST(RingTest, AttachRefusesWhatIsNotItsRing) {
  Buffer b(TypeParam::BytesFor(64));
  EXPECT_EQ(StatusCode::kUnavailable, TypeParam::Attach(b.mem, b.size).status().code());  // never published
  ASSERT_TRUE(TypeParam::Create(b.mem, b.size, 64).ok());
  ASSERT_TRUE(TypeParam::Attach(b.mem, b.size).ok());
  // Another slot type.
  EXPECT_EQ(StatusCode::kIncompatible, SpscRing<uint64_t>::Attach(b.mem, b.size).status().code());
  // The region is smaller than the header says.
  auto small = TypeParam::Attach(b.mem, TypeParam::BytesFor(32));
  EXPECT_EQ(StatusCode::kDataLoss, small.status().code());
  // A scribbled capacity.
  reinterpret_cast<format::RingHeader*>(b.mem)->capacity = 1ull << 40;
  EXPECT_EQ(StatusCode::kDataLoss, TypeParam::Attach(b.mem, b.size).status().code());
  reinterpret_cast<format::RingHeader*>(b.mem)->magic = 42;
  EXPECT_EQ(StatusCode::kIncompatible, TypeParam::Attach(b.mem, b.size).status().code());
  EXPECT_EQ(StatusCode::kInvalidArgument, TypeParam::Create(b.mem, b.size, 48).status().code());  // not a power of 2
  EXPECT_EQ(StatusCode::kInvalidArgument, TypeParam::Create(b.mem, 100, 64).status().code());    // too small
}

TEST(SpscRingTest, ScribbledIndicesNeverOverrun) {
  Buffer b(SpscRing<Item>::BytesFor(8));
  auto r = SpscRing<Item>::Create(b.mem, b.size, 8);
  ASSERT_TRUE(r.ok());
  // Someone writes garbage into the indices: tail far ahead of head.
  *reinterpret_cast<uint64_t*>(b.mem + format::kTailOffset) = 1ull << 50;
  auto c = SpscRing<Item>::Attach(b.mem, b.size);
  ASSERT_TRUE(c.ok());
  Item out;
  EXPECT_FALSE(c->TryPop(&out));   // refuses rather than reading 2^50 "items"
  EXPECT_FALSE(c->TryPush(out));   // and refuses to overwrite
}

// One producer, one consumer: every item arrives once, in order.
TEST(SpscRingConcurrentTest, ProducerOrderPreserved) {
  constexpr uint64_t kItems = 2'000'000;
  Buffer b(SpscRing<Item>::BytesFor(1024));
  auto r = SpscRing<Item>::Create(b.mem, b.size, 1024);
  ASSERT_TRUE(r.ok());
  auto consumer_view = SpscRing<Item>::Attach(b.mem, b.size);
  ASSERT_TRUE(consumer_view.ok());
  std::atomic<bool> go{false};
  std::thread producer([&] {
    while (!go.load(std::memory_order_acquire)) {
    }
    Item batch[16];
    uint64_t seq = 0;
    while (seq < kItems) {
      size_t n = 0;
      for (; n < 16 && seq + n < kItems; ++n) batch[n] = Item{7, 0, seq + n};
      size_t pushed = r->TryPushBatch(std::span<const Item>(batch, n));
      seq += pushed;
      if (pushed == 0) std::this_thread::yield();
    }
  });
  go.store(true, std::memory_order_release);
  uint64_t expect = 0;
  Item out[32];
  bool in_order = true;
  while (expect < kItems) {
    size_t n = consumer_view->TryPopBatch(out);
    for (size_t i = 0; i < n; ++i) in_order &= out[i].seq == expect++ && out[i].producer == 7;
    if (n == 0) std::this_thread::yield();
  }
  producer.join();
  EXPECT_TRUE(in_order);
  EXPECT_EQ(kItems, expect);
  Item extra;
  EXPECT_FALSE(consumer_view->TryPop(&extra));
}

// Three producers, three consumers: each consumer sees each producer's items in increasing order, and every
// item is consumed exactly once.
TEST(MpmcRingConcurrentTest, NothingLostOrDuplicatedAndPerProducerOrder) {
  constexpr int kProducers = 3, kConsumers = 3;
  constexpr uint64_t kPerProducer = 300'000;
  Buffer b(MpmcRing<Item>::BytesFor(256));
  auto r = MpmcRing<Item>::Create(b.mem, b.size, 256);
  ASSERT_TRUE(r.ok());
  std::vector<std::atomic<uint8_t>> seen(kProducers * kPerProducer);
  std::atomic<uint64_t> consumed{0};
  std::atomic<bool> go{false};
  std::atomic<int> order_violations{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      while (!go.load(std::memory_order_acquire)) {
      }
      for (uint64_t s = 0; s < kPerProducer;) {
        if (r->TryPush(Item{static_cast<uint32_t>(p), 0, s})) ++s;
        else std::this_thread::yield();
      }
    });
  }
  for (int c = 0; c < kConsumers; ++c) {
    threads.emplace_back([&] {
      while (!go.load(std::memory_order_acquire)) {
      }
      std::vector<int64_t> last(kProducers, -1);
      Item it;
      while (consumed.load(std::memory_order_relaxed) < kProducers * kPerProducer) {
        if (!r->TryPop(&it)) {
          std::this_thread::yield();
          continue;
        }
        if (it.producer >= kProducers || it.seq >= kPerProducer || static_cast<int64_t>(it.seq) <= last[it.producer]) {
          order_violations.fetch_add(1);
          continue;
        }
        last[it.producer] = static_cast<int64_t>(it.seq);
        seen[it.producer * kPerProducer + it.seq].fetch_add(1, std::memory_order_relaxed);
        consumed.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  go.store(true, std::memory_order_release);
  for (auto& t : threads) t.join();
  EXPECT_EQ(0, order_violations.load());
  uint64_t once = 0;
  for (auto& s : seen) once += s.load() == 1;
  EXPECT_EQ(kProducers * kPerProducer, once);
}

}  // namespace
}  // namespace hfe::ring
