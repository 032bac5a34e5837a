// HandlerHost, the loop of a handler process. As a member of a consumer group with an idle limit, it exits
// only once the whole group is caught up: a member that finds its own queue empty may still be given the
// work of another member that is alive but silent (stuck in a handler) once that one is declared dead.
#include "handlers/host.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>
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

// Invariant: a handler running on a worker thread sees its event whole or redacted, never a mix. The
// reading thread hands views on to the workers; a redaction meanwhile waits until the workers are done with
// the views the reader handed out (the host drains and renews its view scope every few milliseconds).
class SlowCopy : public Handler {
 public:
  std::string_view name() const override { return "slow-copy"; }
  Status Handle(const Event& e) override {
    if (copied_.empty()) {
      inside_ = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the redaction starts meanwhile
      redacted_ = e.view.redacted;
      copied_.assign(e.view.payload.begin(), e.view.payload.end());
    }
    return Status::Ok();
  }
  std::atomic<bool> inside_{false};
  bool redacted_ = true;
  std::string copied_;
};

TEST(HandlerHostTest, AHandlerOnAWorkerThreadSeesItsEventWholeOrRedacted) {
  hfe::testing::TempDir dir;
  auto s = store::EventStore::Open(dir.Sub("store"), HostStore());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto r = aggregates::Request::Create("request-1", "template-1", 1);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->Save(**s).ok());
  uint64_t position = 0;
  std::string original;
  ASSERT_TRUE((*s)->ReadAll(0, [&](const store::EventView& v) {
    position = v.position;
    original.assign(v.payload.begin(), v.payload.end());
    return false;
  }).ok());
  Registry registry;
  auto slow = std::make_shared<SlowCopy>();
  registry.RegisterAll(slow);
  HostOptions o;
  o.subscription = "slow";
  o.idle_exit_ms = 300;
  auto host = HandlerHost::Open(**s, registry, o);
  ASSERT_TRUE(host.ok()) << host.status().ToString();
  volatile std::sig_atomic_t stop = 0;
  Status run;
  std::thread t([&] { run = (*host)->Run(&stop); });
  while (!slow->inside_) std::this_thread::yield();
  auto redacted = (*s)->Redact(position);
  t.join();
  ASSERT_TRUE(run.ok()) << run.ToString();
  ASSERT_TRUE(redacted.ok()) << redacted.status().ToString();
  EXPECT_FALSE(slow->redacted_);
  EXPECT_EQ(original, slow->copied_);  // not a byte zeroed under the handler
}

}  // namespace
}  // namespace hfe::handlers
