// The append and read hot paths do not allocate: a counting global operator new sees zero allocations over
// thousands of appends and reads once the store is warm.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "tests/store/store_testutil.h"

namespace {
std::atomic<uint64_t> g_allocations{0};
}

// The replacement pairs malloc with free on purpose; gcc cannot see that new and delete are both replaced.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace hfe::store {
namespace {

TEST(NoAllocTest, AppendAndScanDoNotAllocate) {
  hfe::testing::TempDir dir;
  auto o = testing::SmallStore();
  o.segment_size = 1 << 22;
  auto s = EventStore::Open(dir.Sub("s"), o);
  ASSERT_TRUE(s.ok());
  char payload[128] = {};
  EventData ev;
  ev.type = 1;
  ev.payload = {reinterpret_cast<const uint8_t*>(payload), sizeof payload};
  uint64_t version = 0;
  // Warm up: first segment mapped, stream created.
  ev.id = EventId::Random();
  ASSERT_TRUE((*s)->Append("request-1", ExpectedVersion::NoStream(), {&ev, 1}).ok());
  uint64_t before = g_allocations.load();
  bool all_ok = true;
  for (int i = 0; i < 5000; ++i) {
    ev.id = EventId::Random();
    auto r = (*s)->Append("request-1", ExpectedVersion::Exact(version), {&ev, 1});
    all_ok &= r.ok();
    ++version;
  }
  uint64_t after_append = g_allocations.load();
  uint64_t seen = 0;
  EventStore::Visitor count = [&](const EventView& v) { return seen += v.payload.size() == 128, true; };
  uint64_t before_scan = g_allocations.load();
  ASSERT_TRUE((*s)->ReadAll(0, count).ok());
  uint64_t after_scan = g_allocations.load();
  EXPECT_TRUE(all_ok);
  EXPECT_EQ(before, after_append) << "appends allocated";
  EXPECT_EQ(before_scan, after_scan) << "the scan allocated";
  EXPECT_EQ(5001u, seen);
}

}  // namespace
}  // namespace hfe::store
