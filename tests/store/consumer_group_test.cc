// Consumer groups across processes. The scenario: 2 producer processes, 3 handler processes in one
// group and 1 in another, 1,000,000 events over 10,000 streams; one member of the first group is SIGKILLed
// mid-run. Invariants: each group sees every event at least once; inside each member, each stream's
// versions only go up (per-stream order); the surviving members finish the killed member's work. Also:
// events whose handler keeps failing are parked with the error text while the rest are acked.
#include "store/consumer_group.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <atomic>
#include <cstring>
#include <unordered_map>

#include "ipc/clock.h"
#include "schemas/events_generated.h"
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

// A member process: handles until the group has seen `total` distinct events.
int Member(const std::string& dir, const std::string& group, GroupCounters* c, std::atomic<uint8_t>* seen, uint64_t total) {
  auto s = EventStore::Open(dir, GroupStore());
  if (!s.ok()) return 1;
  auto m = GroupMember::Join(**s, group, {});
  if (!m.ok()) return 2;
  std::unordered_map<std::string, uint64_t> last;
  while (c->unique.load(std::memory_order_relaxed) < total) {
    auto n = (*m)->Poll([&](const EventView& e) {
      uint64_t seq;
      std::memcpy(&seq, e.payload.data(), 8);
      auto [it, fresh] = last.try_emplace(std::string(e.stream), e.version);
      if (!fresh) {
        if (e.version <= it->second) c->order_violations.fetch_add(1);
        it->second = e.version;
      }
      if (seq < total && seen[seq].fetch_add(1) == 0) c->unique.fetch_add(1);
      c->deliveries.fetch_add(1);
      return Status::Ok();
    });
    if (!n.ok()) return 3;
    if (*n == 0) (*m)->Wait(1'000'000);
  }
  return 0;
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

}  // namespace
}  // namespace hfe::store
