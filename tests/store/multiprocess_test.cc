// Four producer processes append to 1,000 shared streams with exact expected versions. Invariant: every
// stream holds versions 0..n-1 with no gap or duplicate, in log order, and the events read back equal the
// successful appends.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <atomic>
#include <map>
#include <random>

#include "tests/store/store_testutil.h"

namespace hfe::store {
namespace {

TEST(MultiProcessTest, FourProducersExactVersionsOnSharedStreams) {
  hfe::testing::TempDir dir;
  auto o = testing::SmallStore();
  o.segment_size = 1 << 20;
  { ASSERT_TRUE(EventStore::Open(dir.Sub("s"), o).ok()); }
  constexpr int kProducers = 4, kAppends = 4000, kStreams = 1000;
  auto* counts = static_cast<std::atomic<uint64_t>*>(
      ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(MAP_FAILED, static_cast<void*>(counts));
  hfe::testing::Children kids;
  std::vector<pid_t> pids;
  for (int p = 0; p < kProducers; ++p) {
    pids.push_back(kids.Spawn([&, p] {
      auto s = EventStore::Open(dir.Sub("s"), o);
      if (!s.ok()) return 1;
      std::mt19937 rng(p);
      for (int i = 0; i < kAppends; ++i) {
        std::string stream = "request-" + std::to_string(rng() % kStreams);
        for (;;) {
          StreamInfo info = (*s)->GetStream(stream);
          ExpectedVersion ev = info.next_version == 0 ? ExpectedVersion::NoStream()
                                                      : ExpectedVersion::Exact(info.next_version - 1);
          testing::TestEvent e("p" + std::to_string(p));
          auto r = (*s)->Append(stream, ev, {&e.data, 1});
          if (r.ok()) {
            counts[p].fetch_add(1);
            break;
          }
          if (r.status().code() != StatusCode::kWrongExpectedVersion) return 2;
          counts[kProducers + p].fetch_add(1);  // conflicts
        }
      }
      return 0;
    }));
  }
  for (pid_t p : pids) ASSERT_EQ(0, kids.Wait(p));
  uint64_t successes = 0;
  for (int p = 0; p < kProducers; ++p) successes += counts[p].load();
  EXPECT_EQ(static_cast<uint64_t>(kProducers * kAppends), successes);

  auto s = EventStore::Open(dir.Sub("s"), o);
  ASSERT_TRUE(s.ok());
  auto all = testing::ReadAll(**s);
  EXPECT_EQ(successes, all.size());
  std::map<std::string, uint64_t> next;
  uint64_t last_pos = 0;
  for (const auto& e : all) {
    EXPECT_EQ(next[e.stream]++, e.version) << e.stream;
    EXPECT_GT(e.position, last_pos);
    last_pos = e.position;
  }
  for (const auto& [stream, n] : next) EXPECT_EQ(n, (*s)->GetStream(stream).next_version);
  auto rep = (*s)->Verify();
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->ok()) << rep->problems[0];
  ::munmap(counts, 4096);
}

}  // namespace
}  // namespace hfe::store
