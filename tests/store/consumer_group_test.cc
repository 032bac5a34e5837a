// Consumer groups across processes. The scenario: 2 producer processes, 3 handler processes in one
// group and 1 in another, 1,000,000 events over 10,000 streams; one member of the first group is SIGKILLed
// mid-run. Invariants: each group sees every event at least once; inside each member, each stream's
// versions only go up (per-stream order); the surviving members finish the killed member's work. Also:
// events whose handler keeps failing are parked with the error text while the rest are acked; members
// SIGKILLed and replaced before the dispatcher noticed lose nothing; a member declared dead while its
// handler ran cannot pull the group cursor back.
#include "store/consumer_group.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <random>
#include <unordered_map>

#include "ipc/clock.h"
#include "schemas/events_generated.h"
#include "store/internal/fault.h"
#include "tests/store/store_testutil.h"

namespace hfe::store {
namespace {

struct GroupCounters {
  std::atomic<uint64_t> unique;      // distinct events seen by the group
  std::atomic<uint64_t> deliveries;  // including redeliveries
  std::atomic<uint64_t> order_violations;
};

template <typename T>
T* Shared(size_t n) {
  void* p = ::mmap(nullptr, sizeof(T) * n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  return static_cast<T*>(p);
}

StoreOptions GroupStore() {
  StoreOptions o = testing::SmallStore();
  o.segment_size = 64ull << 20;
  o.stream_capacity = 20000;
  o.dedup_window = 1 << 20;
  return o;
}

int Produce(const std::string& dir, uint64_t first, uint64_t count, uint64_t streams) {
  auto s = EventStore::Open(dir, GroupStore());
  if (!s.ok()) return 1;
  uint8_t payload[64] = {};
  for (uint64_t seq = first; seq < first + count; ++seq) {
    std::memcpy(payload, &seq, 8);
    EventData e{EventId{0xabc, seq + 1}, 1, 0, {payload, sizeof payload}};
    if (!(*s)->Append("s-" + std::to_string(seq % streams), ExpectedVersion::Any(), {&e, 1}).ok()) return 2;
  }
  return 0;
}

// What a member process records of each delivery: the event's sequence number (the first 8 bytes of its
// payload) is marked seen, and each stream's versions must only go up inside this process.
class Recorder {
 public:
  Recorder(GroupCounters* c, std::atomic<uint8_t>* seen, uint64_t total) : c_(c), seen_(seen), total_(total) {}
  void operator()(const EventView& e) {
    uint64_t seq;
    std::memcpy(&seq, e.payload.data(), 8);
    auto [it, fresh] = last_.try_emplace(std::string(e.stream), e.version);
    if (!fresh) {
      if (e.version <= it->second) c_->order_violations.fetch_add(1);
      it->second = e.version;
    }
    if (seq < total_ && seen_[seq].fetch_add(1) == 0) c_->unique.fetch_add(1);
    c_->deliveries.fetch_add(1);
  }

 private:
  GroupCounters* c_;
  std::atomic<uint8_t>* seen_;
  uint64_t total_;
  std::unordered_map<std::string, uint64_t> last_;
};

// A member process: handles until the group has seen `total` distinct events.
int Member(const std::string& dir, const std::string& group, GroupCounters* c, std::atomic<uint8_t>* seen, uint64_t total) {
  auto s = EventStore::Open(dir, GroupStore());
  if (!s.ok()) return 1;
  auto m = GroupMember::Join(**s, group, {});
  if (!m.ok()) return 2;
  Recorder record(c, seen, total);
  while (c->unique.load(std::memory_order_relaxed) < total) {
    auto n = (*m)->Poll([&](const EventView& e) {
      record(e);
      return Status::Ok();
    });
    if (!n.ok()) return 3;
    if (*n == 0) (*m)->Wait(1'000'000);
  }
  return 0;
}

// One member process of the choreographed tests below, and what the test and it tell each other.
struct Stage {
  std::atomic<int> joined;
  std::atomic<int> go;        // a member started with wait_for_go polls once this is set
  std::atomic<int> stalled;   // a member with stall_first is inside its first handler call
  std::atomic<int> release;   // ... and returns from it once this is set
  std::atomic<int> evicted;   // Poll said this member was declared dead
  std::atomic<int> stop;
  std::atomic<uint64_t> polls;
  std::atomic<uint64_t> handled;
};

struct Plan {
  GroupOptions options;        // the group's, when this member creates it
  bool wait_for_go = false;
  bool never_poll = false;     // joins and idles: what the dispatcher gives it stays unacknowledged
  bool stall_first = false;
  bool stop_in_dispatch = false;  // SIGSTOPs itself inside its first Dispatch (the fault point)
  int64_t spin_ns = 0;         // busy time per event, so that members' rings hold a backlog
};

void StopOnceInDispatch(internal::FaultPoint p) {
  static bool stopped = false;
  if (p == internal::FaultPoint::kGroupDispatch && !stopped) {
    stopped = true;
    ::raise(SIGSTOP);
  }
}

// Polls until stage->stop; returns 0 (also when declared dead: it records that and leaves).
int RunMember(const std::string& dir, const Plan& plan, Stage* stage, GroupCounters* c, std::atomic<uint8_t>* seen,
              uint64_t total) {
  auto s = EventStore::Open(dir, GroupStore());
  if (!s.ok()) return 1;
  auto m = GroupMember::Join(**s, "g", plan.options);
  if (!m.ok()) return 2;
  if (plan.stop_in_dispatch) internal::g_fault_hook.store(&StopOnceInDispatch);
  stage->joined = 1;
  while (plan.wait_for_go && !stage->go && !stage->stop) ::usleep(1000);
  while (plan.never_poll && !stage->stop) ::usleep(1000);
  Recorder record(c, seen, total);
  bool first = true;
  while (!stage->stop) {
    auto n = (*m)->Poll([&](const EventView& e) {
      if (plan.stall_first && first) {
        stage->stalled = 1;
        while (!stage->release) ::usleep(1000);
      }
      first = false;
      record(e);
      stage->handled.fetch_add(1);
      for (int64_t until = clock::MonotonicNanos() + plan.spin_ns; clock::MonotonicNanos() < until;) {
      }
      return Status::Ok();
    });
    stage->polls.fetch_add(1);
    if (!n.ok()) {
      if (n.status().code() != StatusCode::kFailedPrecondition) return 3;
      stage->evicted = 1;
      return 0;
    }
    if (*n == 0) (*m)->Wait(1'000'000);
  }
  return 0;
}

// Checks `done` every millisecond until it holds or `limit_s` seconds passed (a guard against hanging
// when the code is wrong, not a timing assertion); returns whether it held.
bool WaitFor(const std::function<bool()>& done, int limit_s = 60) {
  const int64_t limit = clock::MonotonicNanos() + limit_s * 1'000'000'000ll;
  while (!done()) {
    if (clock::MonotonicNanos() > limit) return false;
    ::usleep(1000);
  }
  return true;
}

// The group's cursor has reached the end of the log: everything is acknowledged.
bool CursorAtEnd(const EventStore& s) {
  auto info = GroupMember::Info(s, "g");
  return info.ok() && info->cursor >= s.ResolvedPosition();
}

uint64_t Missing(const std::atomic<uint8_t>* seen, uint64_t total) {
  uint64_t missing = 0;
  for (uint64_t i = 0; i < total; ++i) missing += seen[i].load() == 0;
  return missing;
}

TEST(ConsumerGroupTest, TwoGroupsSeeEverythingInOrderAcrossAMemberKill) {
  constexpr uint64_t kEvents = 1'000'000, kStreams = 10'000;
  hfe::testing::TempDir dir;
  const std::string store_dir = dir.Sub("store");
  { ASSERT_TRUE(EventStore::Open(store_dir, GroupStore()).ok()); }
  auto* counters = Shared<GroupCounters>(2);
  auto* seen_a = Shared<std::atomic<uint8_t>>(kEvents);
  auto* seen_b = Shared<std::atomic<uint8_t>>(kEvents);
  hfe::testing::Children kids;
  std::vector<pid_t> members_a;
  for (int i = 0; i < 3; ++i) {
    members_a.push_back(kids.Spawn([&] { return Member(store_dir, "group-a", &counters[0], seen_a, kEvents); }));
  }
  pid_t member_b = kids.Spawn([&] { return Member(store_dir, "group-b", &counters[1], seen_b, kEvents); });
  pid_t p1 = kids.Spawn([&] { return Produce(store_dir, 0, kEvents / 2, kStreams); });
  pid_t p2 = kids.Spawn([&] { return Produce(store_dir, kEvents / 2, kEvents / 2, kStreams); });
  // Kill one member of group-a once a third of the events went through the group.
  while (counters[0].unique.load() < kEvents / 3) ::usleep(2000);
  kids.Kill(members_a[1]);
  const uint64_t seen_at_kill = counters[0].unique.load();
  RecordProperty("group_a_seen_at_kill", static_cast<int>(seen_at_kill));
  EXPECT_LT(seen_at_kill, kEvents) << "the member was killed after the run, not during it";
  EXPECT_EQ(128 + SIGKILL, kids.Wait(members_a[1]));
  EXPECT_EQ(0, kids.Wait(p1));
  EXPECT_EQ(0, kids.Wait(p2));
  EXPECT_EQ(0, kids.Wait(members_a[0]));
  EXPECT_EQ(0, kids.Wait(members_a[2]));
  EXPECT_EQ(0, kids.Wait(member_b));
  for (int g = 0; g < 2; ++g) {
    EXPECT_EQ(kEvents, counters[g].unique.load()) << "group " << g;
    EXPECT_EQ(0u, counters[g].order_violations.load()) << "group " << g;
  }
  uint64_t missing_a = 0, missing_b = 0;
  for (uint64_t i = 0; i < kEvents; ++i) {
    missing_a += seen_a[i].load() == 0;
    missing_b += seen_b[i].load() == 0;
  }
  EXPECT_EQ(0u, missing_a);
  EXPECT_EQ(0u, missing_b);
  // The single member of group-b saw each event exactly once; group-a redelivered at most the dead
  // member's unacknowledged work.
  EXPECT_EQ(kEvents, counters[1].deliveries.load());
  RecordProperty("group_a_redeliveries", static_cast<int>(counters[0].deliveries.load() - kEvents));
  auto s = EventStore::Open(store_dir, GroupStore());
  ASSERT_TRUE(s.ok());
  auto info = GroupMember::Info(**s, "group-a");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(0, info->members);  // everyone left
  EXPECT_EQ(0u, info->parked);
}

TEST(ConsumerGroupTest, FailingEventsAreParkedWithTheirErrorAndTheRestAcked) {
  hfe::testing::TempDir dir;
  const std::string store_dir = dir.Sub("store");
  auto s = EventStore::Open(store_dir, GroupStore());
  ASSERT_TRUE(s.ok());
  std::vector<uint64_t> bad_positions;
  for (int i = 0; i < 100; ++i) {
    testing::TestEvent e("e" + std::to_string(i));
    std::string stream = (i % 10 == 3 ? "bad-" : "good-") + std::to_string(i % 7);
    uint64_t pos;
    ASSERT_TRUE((*s)->Append(stream, ExpectedVersion::Any(), {&e.data, 1}, {&pos, 1}).ok());
    if (i % 10 == 3) bad_positions.push_back(pos);
  }
  GroupOptions o;
  o.retry_budget = 3;
  auto m = GroupMember::Join(**s, "parking", o);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  int attempts_on_bad = 0, handled_good = 0;
  for (int idle = 0; idle < 3;) {
    auto n = (*m)->Poll([&](const EventView& e) {
      if (e.stream.substr(0, 4) == "bad-") {
        ++attempts_on_bad;
        return Status(StatusCode::kUnavailable, "notification service refused " + std::string(e.stream));
      }
      ++handled_good;
      return Status::Ok();
    });
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    idle = *n == 0 ? idle + 1 : 0;
    if (*n == 0) (*m)->Wait(1'000'000);
  }
  EXPECT_EQ(90, handled_good);
  EXPECT_EQ(30, attempts_on_bad);  // 10 events x the retry budget of 3
  std::vector<uint64_t> parked_positions;
  ASSERT_TRUE(GroupMember::ReadParked(**s, "parking", [&](const EventView& v) {
    flatbuffers::Verifier ver(v.payload.data(), v.payload.size());
    EXPECT_TRUE(schema::VerifyEnvelopeBuffer(ver));
    auto* p = schema::GetEnvelope(v.payload.data())->body_as_ParkedEvent();
    EXPECT_NE(nullptr, p);
    if (!p) return false;
    parked_positions.push_back(p->original_position());
    EXPECT_NE(std::string::npos, p->error()->str().find("notification service refused bad-"));
    EXPECT_EQ(3, p->attempts());
    return true;
  }).ok());
  EXPECT_EQ(bad_positions, parked_positions);
  auto info = GroupMember::Info(**s, "parking");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(10u, info->parked);
  EXPECT_EQ(100u, info->handled);

  // Replay: the first half succeeds now (the service came back for them), the rest fails and is re-parked.
  int calls = 0;
  auto r = (*m)->ReplayParked([&](const EventView& e) {
    ++calls;
    EXPECT_EQ("bad-", e.stream.substr(0, 4));
    return calls <= 5 ? Status::Ok() : Status(StatusCode::kUnavailable, "still down");
  });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(10u, r->replayed);
  EXPECT_EQ(5u, r->succeeded);
  EXPECT_EQ(5u, r->reparked);
  // A second replay sees only the 5 re-parked ones.
  auto r2 = (*m)->ReplayParked([](const EventView&) { return Status::Ok(); });
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(5u, r2->replayed);
  EXPECT_EQ(5u, r2->succeeded);
  auto r3 = (*m)->ReplayParked([](const EventView&) { return Status::Ok(); });
  ASSERT_TRUE(r3.ok());
  EXPECT_EQ(0u, r3->replayed);
}

TEST(ConsumerGroupTest, RefusesSecondMembershipInOneProcessAndMismatchedFilter) {
  hfe::testing::TempDir dir;
  auto s = EventStore::Open(dir.Sub("store"), GroupStore());
  ASSERT_TRUE(s.ok());
  auto a = GroupMember::Join(**s, "g", {});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(StatusCode::kFailedPrecondition, GroupMember::Join(**s, "g", {}).status().code());
  GroupOptions other;
  other.stream_prefix = "request-";
  a->reset();
  EXPECT_EQ(StatusCode::kFailedPrecondition, GroupMember::Join(**s, "g", other).status().code());
  EXPECT_EQ(StatusCode::kFailedPrecondition, Subscription::Open(**s, "g", {}).status().code());
  EXPECT_EQ(StatusCode::kInvalidArgument, GroupMember::Join(**s, "a/b", {}).status().code());
}


// A member SIGKILLed with work in its ring is replaced by a new process in its slot before the dispatcher
// looked again (the dispatcher is busy in a handler meanwhile). The dispatcher must see a new member in that
// slot, not the old one still alive, and hand the dead member's unacknowledged events out again: every
// event is handled, per-stream order holds, and the group cursor reaches the end.
TEST(ConsumerGroupTest, AMemberJoiningADeadMembersSlotGetsItsUnackedWorkAgain) {
  constexpr uint64_t kEvents = 2000, kStreams = 200;
  hfe::testing::TempDir dir;
  const std::string store_dir = dir.Sub("store");
  auto s = EventStore::Open(store_dir, GroupStore());
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(0, Produce(store_dir, 0, kEvents, kStreams));
  auto* counters = Shared<GroupCounters>(1);
  auto* seen = Shared<std::atomic<uint8_t>>(kEvents);
  auto* stage = Shared<Stage>(3);
  Plan dispatcher, idle, replacement;
  dispatcher.options.partitions = 16;
  dispatcher.options.liveness_timeout_ms = 60'000;  // deaths are found by pid only
  dispatcher.wait_for_go = dispatcher.stall_first = true;
  idle.never_poll = true;
  hfe::testing::Children kids;
  pid_t a = kids.Spawn([&] { return RunMember(store_dir, dispatcher, &stage[0], counters, seen, kEvents); });
  ASSERT_TRUE(WaitFor([&] { return stage[0].joined == 1; }));
  pid_t b = kids.Spawn([&] { return RunMember(store_dir, idle, &stage[1], counters, seen, kEvents); });
  ASSERT_TRUE(WaitFor([&] { return stage[1].joined == 1; }));
  // The first member dispatches to both rings, then stalls in its first handler call.
  stage[0].go = 1;
  ASSERT_TRUE(WaitFor([&] { return stage[0].stalled == 1; }));
  kids.Kill(b);
  EXPECT_EQ(128 + SIGKILL, kids.Wait(b));
  pid_t b2 = kids.Spawn([&] { return RunMember(store_dir, replacement, &stage[2], counters, seen, kEvents); });
  ASSERT_TRUE(WaitFor([&] { return stage[2].joined == 1; }));
  stage[0].release = 1;
  EXPECT_TRUE(WaitFor([&] { return Missing(seen, kEvents) == 0 && CursorAtEnd(**s); }))
      << Missing(seen, kEvents) << " events reached no member; group cursor at end: " << CursorAtEnd(**s);
  stage[0].stop = stage[2].stop = 1;
  EXPECT_EQ(0, kids.Wait(a));
  EXPECT_EQ(0, kids.Wait(b2));
  EXPECT_EQ(0u, Missing(seen, kEvents));
  EXPECT_EQ(0u, counters->order_violations.load());
  EXPECT_GT(stage[2].handled.load(), 0u);  // the replacement took the dead member's share
}

// The operator's run: a writer appends batches of 1-19 events (consecutive versions of one stream) while
// members are SIGKILLed and restarted at once, well within the liveness interval, many times; then one member
// drains alone. Every event is handled at least once, each stream in version order inside every member
// process, and the group cursor reaches the end of the log.
TEST(ConsumerGroupTest, MembersKilledAndRestartedWithinTheLivenessIntervalLoseNothing) {
  constexpr uint64_t kMaxEvents = 1'000'000;
  constexpr int kMembers = 2, kKills = 40;
  hfe::testing::TempDir dir;
  const std::string store_dir = dir.Sub("store");
  auto s = EventStore::Open(store_dir, GroupStore());
  ASSERT_TRUE(s.ok());
  auto* counters = Shared<GroupCounters>(1);
  auto* seen = Shared<std::atomic<uint8_t>>(kMaxEvents);
  auto* written = Shared<std::atomic<uint64_t>>(1);
  auto* writer_stop = Shared<std::atomic<int>>(1);
  auto* stage = Shared<Stage>(kMembers * (kKills + 1));  // one per member process
  hfe::testing::Children kids;
  pid_t writer = kids.Spawn([&] {
    auto w = EventStore::Open(store_dir, GroupStore());
    if (!w.ok()) return 1;
    std::mt19937 rng(7);
    uint8_t payload[20][64] = {};
    EventData batch[20];
    uint64_t seq = 0;
    while (*writer_stop == 0 && seq + 20 < kMaxEvents) {
      const int n = 1 + static_cast<int>(rng() % 19);
      for (int i = 0; i < n; ++i) {
        const uint64_t q = seq + i;
        std::memcpy(payload[i], &q, 8);
        batch[i] = EventData{EventId{0xbeef, q + 1}, 1, 0, {payload[i], sizeof payload[i]}};
      }
      if (!(*w)->Append("s-" + std::to_string(rng() % 50), ExpectedVersion::Any(), {batch, static_cast<size_t>(n)}).ok()) {
        return 2;
      }
      seq += n;
      written->store(seq);
      ::usleep(1000);
    }
    return 0;
  });
  Plan plan;
  plan.spin_ns = 20'000;
  int next_stage = 0;
  pid_t members[kMembers];
  auto start = [&](int i) {
    Stage* st = &stage[next_stage++];
    members[i] = kids.Spawn([&, st] { return RunMember(store_dir, plan, st, counters, seen, kMaxEvents); });
    return st;
  };
  Stage* current[kMembers];
  for (int i = 0; i < kMembers; ++i) current[i] = start(i);
  std::mt19937 rng(11);
  for (int k = 0; k < kKills; ++k) {
    ::usleep(30'000 + rng() % 90'000);
    const int i = static_cast<int>(rng() % kMembers);
    kids.Kill(members[i]);
    EXPECT_EQ(128 + SIGKILL, kids.Wait(members[i]));
    current[i] = start(i);  // at once: before the dispatcher's next liveness check
  }
  *writer_stop = 1;
  EXPECT_EQ(0, kids.Wait(writer));
  const uint64_t total = written->load();
  // One member drains alone.
  kids.Kill(members[1]);
  EXPECT_EQ(128 + SIGKILL, kids.Wait(members[1]));
  EXPECT_TRUE(WaitFor([&] { return Missing(seen, total) == 0 && CursorAtEnd(**s); }))
      << Missing(seen, total) << " of " << total << " events reached no member; group cursor at end: "
      << CursorAtEnd(**s);
  current[0]->stop = 1;
  EXPECT_EQ(0, kids.Wait(members[0]));
  EXPECT_EQ(0u, Missing(seen, total));
  EXPECT_EQ(0u, counters->order_violations.load());
  RecordProperty("events", static_cast<int>(total));
  RecordProperty("redeliveries", static_cast<int>(counters->deliveries.load() - total));
}

// A dispatcher stopped inside Dispatch (SIGSTOP at the fault point) loses the role once it is silent past
// the liveness timeout, but whoever takes the role must not push work while the stopped one may still push
// into the same rings (two producers on one SPSC ring): it waits until the old one has left Dispatch.
// Then the two share the work and nothing is lost.
TEST(ConsumerGroupTest, ANewDispatcherWaitsUntilAStalledOneLeavesDispatch) {
  constexpr uint64_t kEvents = 1000, kStreams = 100;
  hfe::testing::TempDir dir;
  const std::string store_dir = dir.Sub("store");
  auto s = EventStore::Open(store_dir, GroupStore());
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(0, Produce(store_dir, 0, kEvents, kStreams));
  auto* counters = Shared<GroupCounters>(1);
  auto* seen = Shared<std::atomic<uint8_t>>(kEvents);
  auto* stage = Shared<Stage>(2);
  Plan stalled, second;
  stalled.options.liveness_timeout_ms = 200;
  stalled.stop_in_dispatch = true;
  hfe::testing::Children kids;
  pid_t first = kids.Spawn([&] { return RunMember(store_dir, stalled, &stage[0], counters, seen, kEvents); });
  int status = 0;
  ASSERT_EQ(first, ::waitpid(first, &status, WUNTRACED));
  ASSERT_TRUE(WIFSTOPPED(status)) << "the first member should have stopped itself inside Dispatch";
  pid_t other = kids.Spawn([&] { return RunMember(store_dir, second, &stage[1], counters, seen, kEvents); });
  // The second member takes the role once the first is silent past the timeout ...
  ASSERT_TRUE(WaitFor([&] {
    auto info = GroupMember::Info(**s, "g");
    return info.ok() && info->leader_pid == other;
  }));
  // ... and then polls on, but dispatches nothing while the first is still inside Dispatch.
  const uint64_t polls = stage[1].polls.load();
  ASSERT_TRUE(WaitFor([&] { return stage[1].polls.load() >= polls + 50; }));
  EXPECT_EQ(0u, stage[1].handled.load()) << "a second dispatcher pushed work while the first was inside Dispatch";
  ::kill(first, SIGCONT);
  EXPECT_TRUE(WaitFor([&] { return Missing(seen, kEvents) == 0 && CursorAtEnd(**s); }))
      << Missing(seen, kEvents) << " events reached no member; group cursor at end: " << CursorAtEnd(**s);
  stage[0].stop = stage[1].stop = 1;
  EXPECT_EQ(0, kids.Wait(first));
  EXPECT_EQ(0, kids.Wait(other));
  EXPECT_EQ(0u, Missing(seen, kEvents));
  EXPECT_EQ(0u, counters->order_violations.load());
}

// A member whose handler outlives the liveness timeout is declared dead and its partition moves on; the new
// owner handles everything and acknowledges to the end. When the old handler finally returns, its
// acknowledgement must not land over the new owner's: the group cursor stays at the end.
TEST(ConsumerGroupTest, AMemberDeclaredDeadMidHandlerDoesNotPullTheCursorBack) {
  constexpr uint64_t kEvents = 500, kStreams = 5;
  hfe::testing::TempDir dir;
  const std::string store_dir = dir.Sub("store");
  auto s = EventStore::Open(store_dir, GroupStore());
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(0, Produce(store_dir, 0, kEvents, kStreams));
  auto* counters = Shared<GroupCounters>(1);
  auto* seen = Shared<std::atomic<uint8_t>>(kEvents);
  auto* stage = Shared<Stage>(2);
  Plan slow, other;
  slow.options.partitions = 1;  // one partition: the new owner acknowledges past the slow member's event
  slow.options.liveness_timeout_ms = 200;
  slow.stall_first = true;
  hfe::testing::Children kids;
  pid_t m = kids.Spawn([&] { return RunMember(store_dir, slow, &stage[0], counters, seen, kEvents); });
  ASSERT_TRUE(WaitFor([&] { return stage[0].stalled == 1; }));
  pid_t n = kids.Spawn([&] { return RunMember(store_dir, other, &stage[1], counters, seen, kEvents); });
  ASSERT_TRUE(WaitFor([&] { return Missing(seen, kEvents) == 0 && CursorAtEnd(**s); }))
      << Missing(seen, kEvents) << " events reached no member";
  stage[0].release = 1;
  EXPECT_EQ(0, kids.Wait(m));
  EXPECT_EQ(1, stage[0].evicted.load());  // its next Poll told it it had been declared dead
  EXPECT_TRUE(CursorAtEnd(**s)) << "the late acknowledgement pulled the group cursor back";
  stage[1].stop = 1;
  EXPECT_EQ(0, kids.Wait(n));
  EXPECT_EQ(0u, counters->order_violations.load());
}

// Invariant: a dispatcher SIGKILLed after it rewound a dead member's partitions but before it dispatched from
// the rewound position loses nothing: its successor starts below the partitions' unacknowledged events.
// (Before the fix the successor started at the old dispatch position and those events reached no member.)
void KillAtDispatch(internal::FaultPoint p) {
  if (p == internal::FaultPoint::kGroupDispatch) ::raise(SIGKILL);
}

TEST(ConsumerGroupTest, ADispatcherKilledBetweenRewindAndDispatchLosesNothing) {
  constexpr uint64_t kEvents = 2000, kStreams = 50;
  hfe::testing::TempDir dir;
  const std::string store_dir = dir.Sub("store");
  auto s = EventStore::Open(store_dir, GroupStore());
  ASSERT_TRUE(s.ok());
  auto* counters = Shared<GroupCounters>(1);
  auto* seen = Shared<std::atomic<uint8_t>>(kEvents);
  auto* stage = Shared<Stage>(4);
  Plan first, idle, normal;
  first.options.liveness_timeout_ms = 60'000;  // the idle member is not declared dead for being silent
  idle.never_poll = true;                      // its ring keeps what it is given, unacknowledged
  hfe::testing::Children kids;
  pid_t x = kids.Spawn([&] { return RunMember(store_dir, first, &stage[0], counters, seen, kEvents); });
  ASSERT_TRUE(WaitFor([&] { return stage[0].joined == 1 && stage[0].polls.load() > 0; }));
  pid_t y = kids.Spawn([&] { return RunMember(store_dir, idle, &stage[1], counters, seen, kEvents); });
  ASSERT_TRUE(WaitFor([&] { return stage[1].joined == 1; }));
  ::usleep(300'000);  // the dispatcher (x) sees y and gives it half of the partitions
  ASSERT_EQ(0, Produce(store_dir, 0, kEvents, kStreams));
  // x handles its half; y's half sits in y's ring.
  uint64_t last = ~0ull;
  ASSERT_TRUE(WaitFor([&] {
    uint64_t m = Missing(seen, kEvents);
    bool stable = m == last;
    last = m;
    ::usleep(100'000);
    return stable && m > 0;
  }));
  const uint64_t missing_before = Missing(seen, kEvents);
  RecordProperty("missing_before", static_cast<int>(missing_before));
  kids.Kill(x);
  EXPECT_EQ(128 + SIGKILL, kids.Wait(x));
  kids.Kill(y);
  EXPECT_EQ(128 + SIGKILL, kids.Wait(y));
  // z takes the role, rewinds y's orphaned partitions, and dies at the top of Dispatch.
  Plan killer;
  pid_t z = kids.Spawn([&] {
    internal::g_fault_hook.store(&KillAtDispatch);
    return RunMember(store_dir, killer, &stage[2], counters, seen, kEvents);
  });
  EXPECT_EQ(128 + SIGKILL, kids.Wait(z));
  pid_t w = kids.Spawn([&] { return RunMember(store_dir, normal, &stage[3], counters, seen, kEvents); });
  EXPECT_TRUE(WaitFor([&] { return Missing(seen, kEvents) == 0 && CursorAtEnd(**s); }, 10))
      << Missing(seen, kEvents) << " of " << kEvents << " events reached no member (" << missing_before
      << " before the kills); group cursor at end: " << CursorAtEnd(**s);
  stage[3].stop = 1;
  EXPECT_EQ(0, kids.Wait(w));
}
// Invariant: a process killed while creating a group (its file published, its subscription slot not yet)
// leaves a group the next member can join: the slot is finished from the file, and events flow.
void KillAtGroupCreated(internal::FaultPoint p) {
  if (p == internal::FaultPoint::kGroupCreated) ::raise(SIGKILL);
}

TEST(ConsumerGroupTest, ACreatorKilledBeforeItsSlotLeavesAJoinableGroup) {
  hfe::testing::TempDir dir;
  const std::string store_dir = dir.Sub("store");
  auto s = EventStore::Open(store_dir, GroupStore());
  ASSERT_TRUE(s.ok());
  hfe::testing::Children kids;
  pid_t creator = kids.Spawn([&] {
    auto c = EventStore::Open(store_dir, GroupStore());
    if (!c.ok()) return 1;
    internal::g_fault_hook.store(&KillAtGroupCreated);
    (void)GroupMember::Join(**c, "half@made", GroupOptions{});
    return 2;
  });
  ASSERT_EQ(128 + SIGKILL, kids.Wait(creator));
  ASSERT_EQ(0, Produce(store_dir, 0, 10, 3));
  auto m = GroupMember::Join(**s, "half@made", GroupOptions{});
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  uint64_t handled = 0;
  ASSERT_TRUE(WaitFor([&] {
    auto n = (*m)->Poll([&](const EventView&) { return ++handled, Status::Ok(); });
    return n.ok() && handled >= 10;
  }));
  EXPECT_EQ(10u, handled);
  EXPECT_TRUE(GroupMember::Info(**s, "half@made").ok());
}

}  // namespace
}  // namespace hfe::store
