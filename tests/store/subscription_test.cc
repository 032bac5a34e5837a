// Durable subscriptions: ack-driven cursor that survives restarts, header filters, start points,
// catch-up then live without gap or duplicate, idle parking without CPU, producers unaffected by a stopped
// subscriber, a killed handler process resuming where it acked, and scribbled subscription slots.
#include "store/subscription.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/mman.h>

#include <atomic>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "ipc/clock.h"
#include "store/log_format.h"
#include "tests/store/store_testutil.h"

namespace hfe::store {
namespace {

using testing::TestEvent;

class SubscriptionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto o = testing::SmallStore();
    o.segment_size = 1 << 20;
    auto s = EventStore::Open(dir_.Sub("store"), o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }
  std::vector<uint64_t> AppendN(int n, const std::string& stream, uint32_t type = 1) {
    std::vector<uint64_t> positions;
    for (int i = 0; i < n; ++i) {
      TestEvent e(stream + "#" + std::to_string(i), type);
      uint64_t p;
      EXPECT_TRUE(store_->Append(stream, ExpectedVersion::Any(), {&e.data, 1}, {&p, 1}).ok());
      positions.push_back(p);
    }
    return positions;
  }
  // Polls until nothing is left; returns the positions delivered.
  static std::vector<uint64_t> Drain(Subscription& sub, size_t max_per_poll = 7) {
    std::vector<uint64_t> got;
    for (;;) {
      auto n = sub.Poll([&](const EventView& e) { return got.push_back(e.position), true; }, max_per_poll);
      EXPECT_TRUE(n.ok());
      if (!n.ok() || *n == 0) return got;
    }
  }
  hfe::testing::TempDir dir_;
  std::unique_ptr<EventStore> store_;
};

TEST_F(SubscriptionTest, CursorMovesOnlyOnAckAndSurvivesReopen) {
  auto all = AppendN(10, "request-1");
  {
    auto sub = Subscription::Open(*store_, "audit", {});
    ASSERT_TRUE(sub.ok()) << sub.status().ToString();
    EXPECT_EQ(all, Drain(**sub));
    (*sub)->Ack(all[5]);  // only the first six are acknowledged
    EXPECT_EQ(all[5] + 1, (*sub)->cursor());
  }
  // Restarted: the unacked tail (events 6..9) is delivered again, nothing before it.
  auto sub = Subscription::Open(*store_, "audit", {});
  ASSERT_TRUE(sub.ok());
  EXPECT_EQ(std::vector<uint64_t>(all.begin() + 6, all.end()), Drain(**sub, 2));
  (*sub)->AckDelivered();
  EXPECT_EQ(0u, (*sub)->lag_bytes());
  auto list = Subscription::List(*store_);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(1u, list->size());
  EXPECT_EQ("audit", (*list)[0].name);
  EXPECT_EQ(::getpid(), (*list)[0].member_pid);
}

TEST_F(SubscriptionTest, FiltersOnTypeAndStreamPrefix) {
  auto r1 = AppendN(3, "request-1", 1);
  auto m1 = AppendN(3, "machine-1", 6);
  auto r2 = AppendN(3, "request-2", 2);
  SubscriptionOptions only_created;
  only_created.types = {1};
  auto a = Subscription::Open(*store_, "created", only_created);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(r1, Drain(**a));
  SubscriptionOptions requests;
  requests.stream_prefix = "request-";
  auto b = Subscription::Open(*store_, "requests", requests);
  ASSERT_TRUE(b.ok());
  std::vector<uint64_t> want = r1;
  want.insert(want.end(), r2.begin(), r2.end());
  EXPECT_EQ(want, Drain(**b));
  // Reopening with another filter is refused rather than silently changing what the cursor means.
  a->reset();
  auto c = Subscription::Open(*store_, "created", requests);
  EXPECT_EQ(StatusCode::kFailedPrecondition, c.status().code());
}

TEST_F(SubscriptionTest, StartFromPositionTimestampOrEnd) {
  std::vector<uint64_t> pos;
  for (int i = 0; i < 10; ++i) {
    TestEvent e("e" + std::to_string(i));
    e.data.occurred_at_ns = 5'000'000'000'000 + i * 1000;
    uint64_t p;
    ASSERT_TRUE(store_->Append("s", ExpectedVersion::Any(), {&e.data, 1}, {&p, 1}).ok());
    pos.push_back(p);
  }
  SubscriptionOptions at_pos;
  at_pos.start = SubscriptionOptions::Start::kPosition;
  at_pos.position = pos[7];
  auto a = Subscription::Open(*store_, "from-pos", at_pos);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(std::vector<uint64_t>(pos.begin() + 7, pos.end()), Drain(**a));
  SubscriptionOptions at_time;
  at_time.start = SubscriptionOptions::Start::kTimestamp;
  at_time.timestamp_ns = 5'000'000'000'000 + 4 * 1000;
  auto b = Subscription::Open(*store_, "from-time", at_time);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(std::vector<uint64_t>(pos.begin() + 4, pos.end()), Drain(**b));
  SubscriptionOptions at_end;
  at_end.start = SubscriptionOptions::Start::kEnd;
  auto c = Subscription::Open(*store_, "from-end", at_end);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(Drain(**c).empty());
  auto later = AppendN(2, "s");
  EXPECT_EQ(later, Drain(**c));
}

// Invariant: a subscriber that starts behind and catches up while producers keep appending sees every event
// exactly once, in log order: no gap and no duplicate at the switch from catch-up to live.
TEST_F(SubscriptionTest, CatchUpThenLiveWithoutGapOrDuplicate) {
  AppendN(2000, "warm");
  std::atomic<bool> done{false};
  std::thread producer([&] {
    for (int i = 0; i < 6000; ++i) {
      TestEvent e("live");
      ASSERT_TRUE(store_->Append("live-" + std::to_string(i % 10), ExpectedVersion::Any(), {&e.data, 1}).ok());
    }
    done = true;
  });
  auto sub = Subscription::Open(*store_, "follower", {});
  ASSERT_TRUE(sub.ok());
  std::vector<uint64_t> got;
  for (;;) {
    bool finished = done.load();
    auto n = (*sub)->Poll([&](const EventView& e) { return got.push_back(e.position), true; }, 64);
    ASSERT_TRUE(n.ok());
    (*sub)->AckDelivered();
    if (*n == 0) {
      if (finished && got.size() >= 8000) break;
      (*sub)->Wait(50'000'000);
    }
  }
  producer.join();
  std::vector<uint64_t> all;
  for (const auto& e : testing::ReadAll(*store_)) all.push_back(e.position);
  EXPECT_EQ(all, got);
}

// An idle subscriber parked on the futex uses (next to) no CPU.
TEST_F(SubscriptionTest, ParkedIdleSubscriberUsesNoCpu) {
  SubscriptionOptions o;
  o.wait = WaitStrategy::kPark;
  auto sub = Subscription::Open(*store_, "idle", o);
  ASSERT_TRUE(sub.ok());
  rusage before, after;
  getrusage(RUSAGE_THREAD, &before);
  int64_t t0 = clock::MonotonicNanos();
  for (int i = 0; i < 5; ++i) (*sub)->Wait(100'000'000);
  int64_t wall_us = (clock::MonotonicNanos() - t0) / 1000;
  getrusage(RUSAGE_THREAD, &after);
  auto us = [](const timeval& t) { return int64_t{t.tv_sec} * 1'000'000 + t.tv_usec; };
  int64_t cpu_us = us(after.ru_utime) - us(before.ru_utime) + us(after.ru_stime) - us(before.ru_stime);
  EXPECT_GE(wall_us, 400'000);       // it did wait
  EXPECT_LT(cpu_us, wall_us / 20);   // and slept: under 5% of a core
  // A parked subscriber wakes for a new event.
  std::thread late([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    AppendN(1, "wake");
  });
  (*sub)->Wait(5'000'000'000);
  late.join();
  EXPECT_EQ(1u, Drain(**sub).size());
}

// Producers never wait for a subscriber: one that stops reading only accumulates lag.
TEST_F(SubscriptionTest, StoppedSubscriberDoesNotBlockProducers) {
  auto sub = Subscription::Open(*store_, "stalled", {});
  ASSERT_TRUE(sub.ok());
  ASSERT_EQ(1u, (Drain(**sub), AppendN(1, "x").size()));
  auto appended = AppendN(3000, "burst");  // the subscriber reads nothing meanwhile
  EXPECT_EQ(3000u, appended.size());
  EXPECT_GT((*sub)->lag_bytes(), 3000u * 128);
  auto list = Subscription::List(*store_);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ((*sub)->lag_bytes(), (*list)[0].lag_bytes);
  EXPECT_EQ(3001u, Drain(**sub, 500).size());
}

TEST_F(SubscriptionTest, SecondLiveMemberIsRefusedDeadOneReplaced) {
  auto a = Subscription::Open(*store_, "solo", {});
  ASSERT_TRUE(a.ok());
  hfe::testing::Children kids;
  pid_t p = kids.Spawn([&] {
    auto s = EventStore::Open(dir_.Sub("store"), testing::SmallStore());
    if (!s.ok()) return 1;
    auto b = Subscription::Open(**s, "solo", {});
    return b.status().code() == StatusCode::kFailedPrecondition ? 0 : 2;
  });
  EXPECT_EQ(0, kids.Wait(p));
  a->reset();
  // A member that died holding the subscription is replaced.
  pid_t q = kids.Spawn([&] {
    auto s = EventStore::Open(dir_.Sub("store"), testing::SmallStore());
    if (!s.ok()) return 1;
    auto b = Subscription::Open(**s, "solo", {});
    if (!b.ok()) return 2;
    ::raise(SIGKILL);
    return 0;
  });
  EXPECT_EQ(128 + SIGKILL, kids.Wait(q));
  EXPECT_TRUE(Subscription::Open(*store_, "solo", {}).ok());
  EXPECT_TRUE(Subscription::Delete(*store_, "solo").ok());
  EXPECT_EQ(StatusCode::kNotFound, Subscription::Delete(*store_, "solo").code());
}

// A handler process killed mid-run and restarted: together the runs see every event; only events after the
// last ack are seen twice.
TEST_F(SubscriptionTest, KilledHandlerProcessResumesAfterLastAck) {
  auto positions = AppendN(20000, "request-9");
  auto* seen = static_cast<std::atomic<uint8_t>*>(
      ::mmap(nullptr, positions.size(), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  auto* acked_through = static_cast<std::atomic<uint64_t>*>(
      ::mmap(nullptr, 8, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  std::map<uint64_t, size_t> index;
  for (size_t i = 0; i < positions.size(); ++i) index[positions[i]] = i;
  auto handler = [&](bool die_midway) {
    auto s = EventStore::Open(dir_.Sub("store"), testing::SmallStore());
    if (!s.ok()) return 1;
    auto sub = Subscription::Open(**s, "worker", {});
    if (!sub.ok()) return 2;
    size_t handled = 0;
    for (;;) {
      auto n = (*sub)->Poll([&](const EventView& e) {
        seen[index[e.position]].fetch_add(1);
        return true;
      }, 100);
      if (!n.ok()) return 3;
      if (*n == 0) return 0;
      handled += *n;
      if (handled % 500 == 0) {
        (*sub)->AckDelivered();
        acked_through->store((*sub)->cursor());
      }
      if (die_midway && handled >= 7777) ::raise(SIGKILL);  // dies at 7800 handled, acked through 7500
    }
  };
  hfe::testing::Children kids;
  EXPECT_EQ(128 + SIGKILL, kids.Wait(kids.Spawn([&] { return handler(true); })));
  uint64_t cursor_at_death = acked_through->load();
  EXPECT_EQ(0, kids.Wait(kids.Spawn([&] { return handler(false); })));
  size_t twice = 0;
  for (size_t i = 0; i < positions.size(); ++i) {
    ASSERT_GE(seen[i].load(), 1) << "event " << i << " was never delivered";
    if (seen[i].load() == 2) {
      ++twice;
      EXPECT_GE(positions[i], cursor_at_death) << "an acknowledged event was delivered again";
    }
  }
  EXPECT_EQ(300u, twice);  // exactly the unacked tail
  ::munmap(seen, positions.size());
  ::munmap(acked_through, 8);
}

// Scribbled subscription slots in the control region give errors or clamped values, never a crash: a slot
// of 0xff bytes lists with a bounded name, refuses to open with a filter it does not have, and can be
// deleted; garbage cursors (past the end, inside a frame) poll without error.
TEST_F(SubscriptionTest, ScribbledSlotsDoNotCrash) {
  auto positions = AppendN(5, "s");
  ASSERT_TRUE(Subscription::Open(*store_, "victim", {}).ok());
  ASSERT_TRUE(Subscription::Open(*store_, "cursor-far", {}).ok());
  ASSERT_TRUE(Subscription::Open(*store_, "cursor-mid", {}).ok());
  store_.reset();
  const std::string control = dir_.Sub("store") + "/control.hfe";
  uint64_t table = 0;
  {
    std::ifstream f(control, std::ios::binary);
    f.seekg(584);
    f.read(reinterpret_cast<char*>(&table), 8);
  }
  auto poke = [&](uint64_t off, const std::string& bytes) {
    std::fstream f(control, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(off));
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  };
  std::string garbage(256, '\xff');
  garbage[0] = 1, garbage[1] = garbage[2] = garbage[3] = 0;  // state "active", every other byte 0xff
  poke(table, garbage);
  uint64_t far = ~0ull / 3, mid = positions[2] + 17;
  poke(table + 256 + 64, std::string(reinterpret_cast<const char*>(&far), 8));
  poke(table + 512 + 64, std::string(reinterpret_cast<const char*>(&mid), 8));

  auto s = EventStore::Open(dir_.Sub("store"), testing::SmallStore());
  ASSERT_TRUE(s.ok());
  auto list = Subscription::List(**s);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(3u, list->size());
  EXPECT_EQ(format::kMaxSubscriptionName, (*list)[0].name.size());
  EXPECT_EQ(format::kMaxStreamPrefix, (*list)[0].stream_prefix.size());
  EXPECT_EQ(StatusCode::kFailedPrecondition, Subscription::Open(**s, (*list)[0].name, {}).status().code());
  EXPECT_TRUE(Subscription::Delete(**s, (*list)[0].name).ok());

  auto far_sub = Subscription::Open(**s, "cursor-far", {});
  ASSERT_TRUE(far_sub.ok());
  EXPECT_TRUE(Drain(**far_sub).empty());  // past the end: nothing, no error
  auto mid_sub = Subscription::Open(**s, "cursor-mid", {});
  ASSERT_TRUE(mid_sub.ok());
  EXPECT_EQ(std::vector<uint64_t>(positions.begin() + 3, positions.end()), Drain(**mid_sub));
  EXPECT_EQ(2u, Subscription::List(**s)->size());
}

}  // namespace
}  // namespace hfe::store
