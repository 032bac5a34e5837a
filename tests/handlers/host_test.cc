// HandlerHost, the loop of a handler process. As a member of a consumer group with an idle limit, it exits
// only once the whole group is caught up: a member that finds its own queue empty may still be given the
// work of another member that is alive but silent (stuck in a handler) once that one is declared dead.
#include "handlers/host.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <set>

#include "handlers/aggregates/request.h"
#include "store/consumer_group.h"
#include "tests/store/store_testutil.h"

namespace hfe::handlers {
namespace {

// Remembers the position of every event it is given.
class PositionSet : public Handler {
 public:
  std::string_view name() const override { return "positions"; }
  Status Handle(const Event& e) override {
    std::lock_guard<std::mutex> lock(mu_);
    positions_.insert(e.view.position);
    return Status::Ok();
  }
  size_t size() {
    std::lock_guard<std::mutex> lock(mu_);
    return positions_.size();
  }

 private:
  std::mutex mu_;
  std::set<uint64_t> positions_;
};

store::StoreOptions HostStore() {
  store::StoreOptions o = store::testing::SmallStore();
  o.segment_size = 1 << 20;
  return o;
}

TEST(HandlerHostTest, AGroupMemberWithAnIdleLimitWaitsUntilItsGroupIsCaughtUp) {
  constexpr int kRequests = 50;
  hfe::testing::TempDir dir;
  const std::string store_dir = dir.Sub("store");
  auto s = store::EventStore::Open(store_dir, HostStore());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  for (int i = 0; i < kRequests; ++i) {
    auto r = aggregates::Request::Create("request-" + std::to_string(i), "template-1", 1);
    ASSERT_TRUE(r.ok());
    ASSERT_TRUE(r->Save(**s).ok());
  }
  size_t events = 0;
  ASSERT_TRUE((*s)->ReadAll(0, [&](const store::EventView&) {
    ++events;
    return true;
  }).ok());
  // A first member takes every partition and the dispatcher role, then hangs in its first handler call.
  void* mem = ::mmap(nullptr, sizeof(std::atomic<int>), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(MAP_FAILED, mem);
  auto* stalled = static_cast<std::atomic<int>*>(mem);
  hfe::testing::Children kids;
  kids.Spawn([&] {
    auto c = store::EventStore::Open(store_dir, HostStore());
    if (!c.ok()) return 1;
    store::GroupOptions o;
    o.liveness_timeout_ms = 500;
    auto m = store::GroupMember::Join(**c, "sub@g", o);
    if (!m.ok()) return 2;
    for (;;) {
      auto n = (*m)->Poll([&](const store::EventView&) {
        *stalled = 1;
        for (;;) ::pause();  // killed by the test
        return Status::Ok();
      });
      if (!n.ok()) return 3;
      (*m)->Wait(1'000'000);
    }
  });
  while (*stalled == 0) ::usleep(1000);
  // A host joins the group with an idle limit far below the liveness timeout: its own queue is empty until
  // the first member is declared dead, but the group is not caught up, so it must not exit.
  Registry registry;
  auto positions = std::make_shared<PositionSet>();
  registry.RegisterAll(positions);
  HostOptions o;
  o.subscription = "sub";
  o.group = "g";
  o.idle_exit_ms = 50;
  auto host = HandlerHost::Open(**s, registry, o);
  ASSERT_TRUE(host.ok()) << host.status().ToString();
  volatile std::sig_atomic_t stop = 0;
  Status run = (*host)->Run(&stop);
  EXPECT_TRUE(run.ok()) << run.ToString();
  EXPECT_EQ(events, positions->size()) << "the host exited while its group had work left";
  auto info = store::GroupMember::Info(**s, "sub@g");
  ASSERT_TRUE(info.ok());
  EXPECT_GE(info->cursor, (*s)->ResolvedPosition()) << "the group still had lag when the host exited";
  ::munmap(mem, sizeof(std::atomic<int>));
}

}  // namespace
}  // namespace hfe::handlers
