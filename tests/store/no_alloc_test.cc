// The append and read hot paths do not allocate: a counting global operator new sees zero allocations on the
// appending and reading thread over thousands of appends and reads once the store is warm. (The store's
// segment preparer thread maps the next segment ahead, allocating its bookkeeping: off the hot path, and
// not counted.)
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "tests/store/store_testutil.h"

namespace {
thread_local uint64_t g_thread_allocations = 0;
struct {
  uint64_t load() const { return g_thread_allocations; }
} g_allocations;
}

// The replacement pairs malloc with free on purpose; gcc cannot see that new and delete are both replaced.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

void* operator new(std::size_t n) {
  ++g_thread_allocations;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace hfe::store {
namespace {

TEST(NoAllocTest, AppendPipelinedAppendAndScanDoNotAllocate) {
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
  // Pipelined: tickets collected 64 calls later, then a flush.
  AppendTicket tickets[64];
  for (int i = 0; i < 5000; ++i) {
    ev.id = EventId::Random();
    if (i >= 64) all_ok &= (*s)->Await(tickets[i % 64]).ok();
    auto t = (*s)->AppendAsync("request-1", ExpectedVersion::Exact(version), {&ev, 1});
    all_ok &= t.ok();
    if (t.ok()) tickets[i % 64] = *t;
    ++version;
  }
  for (const AppendTicket& t : tickets) all_ok &= (*s)->Await(t).ok();
  all_ok &= (*s)->Flush().ok();
  uint64_t after_pipelined = g_allocations.load();
  uint64_t seen = 0;
  EventStore::Visitor count = [&](const EventView& v) { return seen += v.payload.size() == 128, true; };
  uint64_t before_scan = g_allocations.load();
  ASSERT_TRUE((*s)->ReadAll(0, count).ok());
  uint64_t after_scan = g_allocations.load();
  EXPECT_TRUE(all_ok);
  EXPECT_EQ(before, after_append) << "appends allocated";
  EXPECT_EQ(after_append, after_pipelined) << "pipelined appends allocated";
  EXPECT_EQ(before_scan, after_scan) << "the scan allocated";
  EXPECT_EQ(10001u, seen);
}

}  // namespace
}  // namespace hfe::store
