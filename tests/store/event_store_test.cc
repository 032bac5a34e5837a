// EventStore: append semantics (expected versions, idempotency, multi-stream atomicity), reads, rollover,
// restart, and the limits of the tables.
#include "store/event_store.h"

#include <fcntl.h>
#include <signal.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "store/internal/fault.h"
#include "store/log_format.h"
#include "tests/store/store_testutil.h"

namespace hfe::store {
namespace {

using testing::Data;
using testing::TestEvent;

class EventStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }
  void Open(StoreOptions o = testing::SmallStore()) {
    store_.reset();
    auto s = EventStore::Open(dir_.Sub("store"), o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }
  Result<AppendResult> Append(const std::string& stream, ExpectedVersion ev, const std::vector<TestEvent>& evs,
                              std::span<uint64_t> positions = {}) {
    auto d = Data(evs);
    return store_->Append(stream, ev, d, positions);
  }
  hfe::testing::TempDir dir_;
  std::unique_ptr<EventStore> store_;
};

TEST_F(EventStoreTest, AppendAndReadBackInOrder) {
  std::vector<TestEvent> evs{TestEvent("a"), TestEvent("bb"), TestEvent("ccc")};
  uint64_t pos[3];
  auto r = Append("request-1", ExpectedVersion::NoStream(), evs, pos);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->already_appended);
  EXPECT_EQ(2u, r->last_version);
  EXPECT_LT(pos[0], pos[1]);
  EXPECT_LT(pos[1], pos[2]);
  EXPECT_EQ(pos[0], r->first_position);
  EXPECT_EQ(pos[2], r->last_position);

  auto all = testing::ReadAll(*store_);
  ASSERT_EQ(3u, all.size());
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(static_cast<uint64_t>(i), all[i].version);
    EXPECT_EQ(pos[i], all[i].position);
    EXPECT_EQ(evs[i].text, all[i].payload);
    EXPECT_EQ(evs[i].data.id, all[i].id);
    EXPECT_EQ("request-1", all[i].stream);
  }
  auto info = store_->GetStream("request-1");
  EXPECT_TRUE(info.exists);
  EXPECT_EQ(3u, info.next_version);
  EXPECT_EQ(3u, store_->Stats().events);
  EXPECT_EQ(1u, store_->Stats().streams);
}

TEST_F(EventStoreTest, ExpectedVersionKinds) {
  EXPECT_EQ(StatusCode::kWrongExpectedVersion, Append("s", ExpectedVersion::StreamExists(), {TestEvent("x")}).status().code());
  EXPECT_EQ(StatusCode::kWrongExpectedVersion, Append("s", ExpectedVersion::Exact(0), {TestEvent("x")}).status().code());
  ASSERT_TRUE(Append("s", ExpectedVersion::NoStream(), {TestEvent("e0")}).ok());
  auto again = Append("s", ExpectedVersion::NoStream(), {TestEvent("x")});
  EXPECT_EQ(StatusCode::kWrongExpectedVersion, again.status().code());
  EXPECT_EQ("stream \"s\": expected no stream, found version 0 (another writer appended first; reload the stream and retry)",
            again.status().message());
  ASSERT_TRUE(Append("s", ExpectedVersion::Exact(0), {TestEvent("e1")}).ok());
  auto stale = Append("s", ExpectedVersion::Exact(0), {TestEvent("x")});
  EXPECT_EQ(StatusCode::kWrongExpectedVersion, stale.status().code());
  EXPECT_NE(std::string::npos, stale.status().message().find("expected version 0, found version 1"));
  ASSERT_TRUE(Append("s", ExpectedVersion::StreamExists(), {TestEvent("e2")}).ok());
  auto any = Append("s", ExpectedVersion::Any(), {TestEvent("e3")});
  ASSERT_TRUE(any.ok());
  EXPECT_EQ(3u, any->last_version);
  // Conflicts wrote nothing visible.
  auto events = testing::ReadStream(*store_, "s");
  ASSERT_EQ(4u, events.size());
  for (int i = 0; i < 4; ++i) EXPECT_EQ("e" + std::to_string(i), events[i].payload);
  EXPECT_EQ(4u, store_->Stats().events);
  EXPECT_EQ(4u, store_->Stats().rejected_frames);
}

TEST_F(EventStoreTest, ReappendReturnsOriginalPositionsWhateverTheExpectation) {
  std::vector<TestEvent> evs{TestEvent("a"), TestEvent("b")};
  uint64_t pos[2], again[2];
  ASSERT_TRUE(Append("s", ExpectedVersion::NoStream(), evs, pos).ok());
  ASSERT_TRUE(Append("s", ExpectedVersion::Exact(1), {TestEvent("c")}).ok());
  for (ExpectedVersion ev : {ExpectedVersion::NoStream(), ExpectedVersion::Any(), ExpectedVersion::Exact(7)}) {
    auto r = Append("s", ev, evs, again);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r->already_appended);
    EXPECT_EQ(pos[0], again[0]);
    EXPECT_EQ(pos[1], again[1]);
    EXPECT_EQ(1u, r->last_version);
  }
  EXPECT_EQ(3u, testing::ReadAll(*store_).size());
  EXPECT_EQ(3u, store_->Stats().events);
}

TEST_F(EventStoreTest, PartlyMatchingBatchIsRefusedWhole) {
  TestEvent a("a");
  ASSERT_TRUE(Append("s", ExpectedVersion::Any(), {a}).ok());
  auto r = Append("s", ExpectedVersion::Any(), {a, TestEvent("new")});
  EXPECT_EQ(StatusCode::kDuplicateEvent, r.status().code());
  EXPECT_EQ(1u, testing::ReadAll(*store_).size());
}

TEST_F(EventStoreTest, BadInputIsRefusedBeforeWriting) {
  TestEvent a("a");
  EXPECT_EQ(StatusCode::kInvalidArgument, Append("s", ExpectedVersion::Any(), {a, a}).status().code());
  EXPECT_EQ(StatusCode::kInvalidArgument, Append("", ExpectedVersion::Any(), {a}).status().code());
  EXPECT_EQ(StatusCode::kInvalidArgument, Append("s", ExpectedVersion::Any(), {}).status().code());
  TestEvent nil("n");
  nil.data.id = EventId{};
  EXPECT_EQ(StatusCode::kInvalidArgument, Append("s", ExpectedVersion::Any(), {nil}).status().code());
  TestEvent huge(std::string(1 << 17, 'x'));
  auto r = Append("s", ExpectedVersion::Any(), {huge});
  EXPECT_EQ(StatusCode::kInvalidArgument, r.status().code());
  EXPECT_EQ(0u, store_->Stats().tail_position - store_->Stats().resolved_position);
  EXPECT_EQ(64u, store_->Stats().tail_position);  // nothing claimed
}

TEST_F(EventStoreTest, MultiStreamAppendIsAllOrNothing) {
  ASSERT_TRUE(Append("machine-1", ExpectedVersion::NoStream(), {TestEvent("m0")}).ok());
  std::vector<TestEvent> req_events{TestEvent("r0"), TestEvent("r1")};  // own the payloads the spans point at
  std::vector<TestEvent> mac_events{TestEvent("m1")};
  std::vector<EventData> req = Data(req_events);
  std::vector<EventData> mac = Data(mac_events);
  std::vector<StreamAppend> bad{{"request-1", ExpectedVersion::NoStream(), req},
                                {"machine-1", ExpectedVersion::NoStream(), mac}};
  auto r = store_->AppendMulti(bad);
  EXPECT_EQ(StatusCode::kWrongExpectedVersion, r.status().code());
  EXPECT_NE(std::string::npos, r.status().message().find("\"machine-1\""));
  EXPECT_FALSE(store_->GetStream("request-1").exists);
  EXPECT_EQ(1u, testing::ReadAll(*store_).size());

  std::vector<StreamAppend> good{{"request-1", ExpectedVersion::NoStream(), req},
                                 {"machine-1", ExpectedVersion::Exact(0), mac}};
  uint64_t pos[3];
  auto ok = store_->AppendMulti(good, pos);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  auto reqs = testing::ReadStream(*store_, "request-1");
  auto macs = testing::ReadStream(*store_, "machine-1");
  ASSERT_EQ(2u, reqs.size());
  ASSERT_EQ(2u, macs.size());
  EXPECT_EQ(1u, macs[1].version);
  EXPECT_EQ(pos[2], macs[1].position);
  EXPECT_EQ("r1", reqs[1].payload);
}

TEST_F(EventStoreTest, SegmentsRollOverAndEverythingStaysReadable) {
  std::string payload(1000, 'p');
  std::vector<uint64_t> positions;
  for (int i = 0; i < 300; ++i) {
    uint64_t pos;
    auto r = Append("s-" + std::to_string(i % 7), ExpectedVersion::Any(), {TestEvent(payload + std::to_string(i))},
                    std::span<uint64_t>(&pos, 1));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    positions.push_back(pos);
  }
  EXPECT_GT(store_->Stats().segments, 4u);
  auto all = testing::ReadAll(*store_);
  ASSERT_EQ(300u, all.size());
  for (int i = 0; i < 300; ++i) {
    EXPECT_EQ(positions[i], all[i].position);
    EXPECT_EQ(payload + std::to_string(i), all[i].payload);
  }
  auto s3 = testing::ReadStream(*store_, "s-3");
  ASSERT_EQ(43u, s3.size());
  for (size_t v = 0; v < s3.size(); ++v) EXPECT_EQ(v, s3[v].version);
  auto rep = store_->Verify();
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->ok()) << (rep->problems.empty() ? "" : rep->problems[0]);
  EXPECT_EQ(300u, rep->events);
}

TEST_F(EventStoreTest, ReadsByPositionTimestampStreamVersionAndNewest) {
  std::vector<uint64_t> pos(20);
  for (int i = 0; i < 20; ++i) {
    TestEvent e("e" + std::to_string(i));
    e.data.occurred_at_ns = 1'000'000'000'000 + i * 1000;
    ASSERT_TRUE(store_->Append("s", ExpectedVersion::Any(), {&e.data, 1}, {&pos[i], 1}).ok());
  }
  auto from = testing::ReadAll(*store_, pos[15]);
  ASSERT_EQ(5u, from.size());
  EXPECT_EQ("e15", from[0].payload);
  auto from_mid = testing::ReadAll(*store_, pos[15] - 1);  // inside the previous frame: starts at the next event
  ASSERT_EQ(5u, from_mid.size());

  std::vector<std::string> since;
  ASSERT_TRUE(store_->ReadSince(1'000'000'000'000 + 17 * 1000, [&](const EventView& v) {
    since.emplace_back(reinterpret_cast<const char*>(v.payload.data()), v.payload.size());
    return true;
  }).ok());
  EXPECT_EQ((std::vector<std::string>{"e17", "e18", "e19"}), since);

  auto tail = testing::ReadStream(*store_, "s", 18);
  ASSERT_EQ(2u, tail.size());
  EXPECT_EQ(18u, tail[0].version);

  std::vector<std::string> last;
  ASSERT_TRUE(store_->ReadLast(3, [&](const EventView& v) {
    last.emplace_back(reinterpret_cast<const char*>(v.payload.data()), v.payload.size());
    return true;
  }).ok());
  EXPECT_EQ((std::vector<std::string>{"e17", "e18", "e19"}), last);
}

TEST_F(EventStoreTest, IdempotencySurvivesRestart) {
  std::vector<TestEvent> evs{TestEvent("a"), TestEvent("b")};
  uint64_t pos[2], again[2];
  ASSERT_TRUE(Append("s", ExpectedVersion::NoStream(), evs, pos).ok());
  Open(testing::SmallStore());
  EXPECT_TRUE(store_->recovery_report().ran);
  auto r = Append("s", ExpectedVersion::NoStream(), evs, again);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->already_appended);
  EXPECT_EQ(pos[0], again[0]);
  EXPECT_EQ(pos[1], again[1]);
  EXPECT_EQ(2u, store_->Stats().events);
  EXPECT_EQ(2u, testing::ReadAll(*store_).size());
}

TEST_F(EventStoreTest, DedupWindowIsBounded) {
  auto o = testing::SmallStore();
  o.dedup_window = 16;
  store_.reset();
  hfe::testing::TempDir d2;
  auto s = EventStore::Open(d2.Sub("st"), o);
  ASSERT_TRUE(s.ok());
  TestEvent first("first");
  ASSERT_TRUE((*s)->Append("s", ExpectedVersion::Any(), {&first.data, 1}).ok());
  for (int i = 0; i < 15; ++i) {
    TestEvent e("x");
    ASSERT_TRUE((*s)->Append("s", ExpectedVersion::Any(), {&e.data, 1}).ok());
  }
  auto inside = (*s)->Append("s", ExpectedVersion::Any(), {&first.data, 1});
  ASSERT_TRUE(inside.ok());
  EXPECT_TRUE(inside->already_appended);  // 16 events: still inside the window
  TestEvent pushes("y");
  ASSERT_TRUE((*s)->Append("s", ExpectedVersion::Any(), {&pushes.data, 1}).ok());
  auto outside = (*s)->Append("s", ExpectedVersion::Any(), {&first.data, 1});
  ASSERT_TRUE(outside.ok());
  EXPECT_FALSE(outside->already_appended);  // fell out of the window: appended anew
  auto rep = (*s)->Verify();
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->ok()) << (rep->problems.empty() ? "" : rep->problems[0]);
}

// Invariant: after thousands of evictions (backward-shift deletions in the compact hash), exactly the newest
// `window` ids are recognised and every older one is accepted anew.
TEST_F(EventStoreTest, DedupWindowStaysExactAcrossManyEvictions) {
  auto o = testing::SmallStore();
  o.dedup_window = 256;
  o.segment_size = 1 << 20;
  hfe::testing::TempDir d2;
  auto s = EventStore::Open(d2.Sub("st"), o);
  ASSERT_TRUE(s.ok());
  std::vector<TestEvent> all;
  for (int i = 0; i < 5000; ++i) {
    all.emplace_back("e");
    ASSERT_TRUE((*s)->Append("s" + std::to_string(i % 13), ExpectedVersion::Any(), {&all.back().data, 1}).ok());
  }
  for (int i = 5000 - 256; i < 5000; ++i) {
    auto r = (*s)->Append("s", ExpectedVersion::Any(), {&all[i].data, 1});
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->already_appended) << i;
  }
  int fresh = 0;
  for (int i = 1000; i < 1100; ++i) {  // long evicted; each re-append evicts one of the newest in turn
    auto r = (*s)->Append("s", ExpectedVersion::Any(), {&all[i].data, 1});
    ASSERT_TRUE(r.ok());
    fresh += !r->already_appended;
  }
  EXPECT_EQ(100, fresh);
  auto rep = (*s)->Verify();
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->ok()) << rep->problems[0];
}

TEST_F(EventStoreTest, FullStreamTableRefusesNewStreamsOnly) {
  auto o = testing::SmallStore();
  o.stream_capacity = 16;
  hfe::testing::TempDir d2;
  auto s = EventStore::Open(d2.Sub("st"), o);
  ASSERT_TRUE(s.ok());
  uint64_t cap = (*s)->Stats().stream_capacity;
  for (uint64_t i = 0; i < cap; ++i) {
    TestEvent e("x");
    ASSERT_TRUE((*s)->Append("s" + std::to_string(i), ExpectedVersion::Any(), {&e.data, 1}).ok());
  }
  TestEvent e("x");
  auto r = (*s)->Append("one-too-many", ExpectedVersion::Any(), {&e.data, 1});
  EXPECT_EQ(StatusCode::kResourceExhausted, r.status().code());
  TestEvent e2("y");
  EXPECT_TRUE((*s)->Append("s0", ExpectedVersion::Any(), {&e2.data, 1}).ok());
}

TEST_F(EventStoreTest, OpeningWithoutCreateFailsClearly) {
  hfe::testing::TempDir d2;
  StoreOptions o;
  auto s = EventStore::Open(d2.Sub("none"), o);
  EXPECT_EQ(StatusCode::kNotFound, s.status().code());
}

// Threads of one process share the store; per-stream versions stay gap-free under contention.
TEST_F(EventStoreTest, ConcurrentThreadsKeepVersionsGapFree) {
  constexpr int kThreads = 4, kPerThread = 500;
  std::vector<std::thread> threads;
  std::atomic<int> conflicts{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string stream = "s" + std::to_string(i % 5);
        for (;;) {
          StreamInfo info = store_->GetStream(stream);
          ExpectedVersion ev = info.next_version == 0 ? ExpectedVersion::NoStream() : ExpectedVersion::Exact(info.next_version - 1);
          TestEvent e("t" + std::to_string(t));
          auto r = store_->Append(stream, ev, {&e.data, 1});
          if (r.ok()) break;
          ASSERT_EQ(StatusCode::kWrongExpectedVersion, r.status().code()) << r.status().ToString();
          ++conflicts;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  auto all = testing::ReadAll(*store_);
  ASSERT_EQ(static_cast<size_t>(kThreads * kPerThread), all.size());
  std::map<std::string, uint64_t> next;
  for (const auto& e : all) EXPECT_EQ(next[e.stream]++, e.version);
  auto rep = store_->Verify();
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->ok()) << (rep->problems.empty() ? "" : rep->problems[0]);
}

// Invariant: the position an append returns is where its event is, even when another appender helped move
// the tail past the claim before the claimant did (a regression: the claim once returned the helped tail).
// Invariant: a stream read never fails because an append races it. The resolver updates the stream's slot
// before it publishes the watermark, so a reader can find the newest position just past the watermark; the
// frame's verdict, not the watermark, says whether it is readable.
// Invariant: streams whose names begin with '$' are the store's own. A user append to one is refused
// before anything is written, so a scribbled "$meta-x" can never break reads of "x"; the store's own writers
// go through AppendSystem.
TEST_F(EventStoreTest, UserAppendsToTheStoresOwnStreamsAreRefused) {
  const uint64_t tail = store_->Stats().tail_position;
  auto r = Append("$meta-base", ExpectedVersion::Any(), {TestEvent("x")});
  ASSERT_EQ(StatusCode::kInvalidArgument, r.status().code());
  EXPECT_NE(std::string::npos, r.status().message().find("\"$meta-base\" begins with '$'")) << r.status().message();
  TestEvent e("y");
  StreamAppend multi[2] = {{"user", ExpectedVersion::Any(), {&e.data, 1}}, {"$parked-g", ExpectedVersion::Any(), {&e.data, 1}}};
  EXPECT_EQ(StatusCode::kInvalidArgument, store_->AppendMulti(multi).status().code());
  EXPECT_EQ(tail, store_->Stats().tail_position);
  EXPECT_FALSE(store_->GetStream("user").exists);

  EXPECT_EQ(StatusCode::kInvalidArgument, store_->AppendSystem("user", ExpectedVersion::Any(), {&e.data, 1}).status().code());
  ASSERT_TRUE(store_->AppendSystem("$probe", ExpectedVersion::Any(), {&e.data, 1}).ok());
  // Metadata set through the API still works, and reads of the stream keep working.
  ASSERT_TRUE(Append("base", ExpectedVersion::NoStream(), {TestEvent("b0"), TestEvent("b1")}).ok());
  StreamMetadata m;
  m.max_count = 1;
  ASSERT_TRUE(store_->SetStreamMetadata("base", m).ok());
  EXPECT_EQ(1u, testing::ReadStream(*store_, "base").size());
}

// Invariant: a stream name is UTF-8 text without control characters, checked once in the library; anything
// else is refused with the offending byte named, and nothing is written.
TEST_F(EventStoreTest, StreamNamesMustBeUtf8WithoutControlCharacters) {
  const uint64_t tail = store_->Stats().tail_position;
  for (std::string bad : {std::string("\xff"), std::string("a\xc3"), std::string("x\ny"), std::string("nul\0", 4),
                          std::string("\xc0\xaf"), std::string("\xed\xa0\x80"), std::string("\xf4\x90\x80\x80"),
                          std::string(), std::string(1025, 'a')}) {
    auto r = Append(bad, ExpectedVersion::Any(), {TestEvent("x")});
    EXPECT_EQ(StatusCode::kInvalidArgument, r.status().code()) << testing::PrintableName(bad);
  }
  EXPECT_EQ("stream name has invalid UTF-8 at byte 1 (0xc3); expected UTF-8 text without control characters",
            Append("a\xc3", ExpectedVersion::Any(), {TestEvent("x")}).status().message());
  EXPECT_EQ(tail, store_->Stats().tail_position);
  for (std::string good : {"request-1", "caf\xc3\xa9", "\xe2\x82\xac-\xf0\x9f\x98\x80", "a b/c:d"}) {
    EXPECT_TRUE(Append(good, ExpectedVersion::Any(), {TestEvent("x")}).ok()) << good;
  }
}

TEST_F(EventStoreTest, ReadStreamRacingAnAppenderNeverFails) {
  constexpr uint64_t kEvents = 60000;
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (uint64_t i = 0; i < kEvents; ++i) {
      auto r = Append("raced", ExpectedVersion::Any(), {TestEvent("e" + std::to_string(i))});
      if (!r.ok()) ADD_FAILURE() << r.status().ToString();
    }
    done.store(true, std::memory_order_release);
  });
  uint64_t reads = 0, errors = 0, gaps = 0;
  std::string first_error;
  while (!done.load(std::memory_order_acquire) || reads == 0) {
    const uint64_t next = store_->GetStream("raced").next_version;
    uint64_t expect = next > 3 ? next - 3 : 0;
    Status s = store_->ReadStream("raced", expect, [&](const EventView& v) {
      if (v.version != expect) ++gaps;
      expect = v.version + 1;
      return true;
    });
    ++reads;
    if (!s.ok() && errors++ == 0) first_error = s.ToString();
  }
  writer.join();
  EXPECT_EQ(0u, errors) << "in " << reads << " reads; first: " << first_error;
  EXPECT_EQ(0u, gaps);
  EXPECT_EQ(kEvents, testing::ReadStream(*store_, "raced").size());
}

TEST_F(EventStoreTest, ConcurrentAppendersGetTheirOwnPositions) {
  constexpr int kThreads = 4, kPerThread = 3000;
  std::vector<std::vector<std::pair<EventId, uint64_t>>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        TestEvent e(std::string(static_cast<size_t>(i % 7) * 40, 'x'));
        uint64_t pos = 0;
        auto r = store_->Append("t" + std::to_string(t), ExpectedVersion::Any(), {&e.data, 1}, {&pos, 1});
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        got[t].push_back({e.data.id, pos});
      }
    });
  }
  for (auto& t : threads) t.join();
  std::map<std::pair<uint64_t, uint64_t>, uint64_t> where;
  for (const auto& e : testing::ReadAll(*store_)) where[{e.id.hi, e.id.lo}] = e.position;
  ASSERT_EQ(static_cast<size_t>(kThreads * kPerThread), where.size());
  for (const auto& per : got) {
    for (const auto& [id, pos] : per) EXPECT_EQ(where[std::make_pair(id.hi, id.lo)], pos);
  }
}

TEST_F(EventStoreTest, RedactionZeroesOnePayloadInPlaceAndKeepsTheLogValid) {
  std::vector<TestEvent> evs{TestEvent("alice@example.com"), TestEvent("bob@example.com"), TestEvent("carol")};
  std::vector<uint64_t> pos(3);
  ASSERT_TRUE(store_->Append("user-1", ExpectedVersion::NoStream(), Data(evs), pos).ok());
  auto r = store_->Redact(pos[1]);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->already_redacted);
  EXPECT_EQ(pos[1], r->event.position);
  EXPECT_TRUE(store_->Redact(pos[1])->already_redacted);
  EXPECT_EQ(StatusCode::kNotFound, store_->Redact(pos[1] + 8).status().code());
  EXPECT_EQ(StatusCode::kNotFound, store_->Redact(1ull << 40).status().code());
  auto check = [&](EventStore& s) {
    std::vector<EventView> got;
    ASSERT_TRUE(s.ReadStream("user-1", 0, [&](const EventView& v) { return got.push_back(v), true; }).ok());
    ASSERT_EQ(3u, got.size());
    EXPECT_FALSE(got[0].redacted);
    EXPECT_EQ("alice@example.com", std::string(got[0].payload.begin(), got[0].payload.end()));
    EXPECT_TRUE(got[1].redacted);
    EXPECT_EQ(pos[1], got[1].position);
    EXPECT_EQ(1u, got[1].version);
    EXPECT_EQ(std::string("bob@example.com").size(), got[1].payload.size());
    EXPECT_TRUE(std::all_of(got[1].payload.begin(), got[1].payload.end(), [](uint8_t b) { return b == 0; }));
    EXPECT_EQ("carol", std::string(got[2].payload.begin(), got[2].payload.end()));
    auto rep = s.Verify();
    ASSERT_TRUE(rep.ok());
    EXPECT_TRUE(rep->ok()) << (rep->problems.empty() ? "" : rep->problems[0]);
  };
  check(*store_);
  StoreOptions strict = testing::SmallStore();
  strict.recovery = RecoveryMode::kStrict;  // refuses to open on a bad CRC
  Open(strict);
  check(*store_);
}

TEST_F(EventStoreTest, StreamMetadataLimitsWhatReadsSeeAndHardDeleteRefusesAppends) {
  std::vector<TestEvent> evs;
  for (int i = 0; i < 5; ++i) evs.emplace_back("e" + std::to_string(i));
  ASSERT_TRUE(Append("order-1", ExpectedVersion::NoStream(), evs).ok());
  auto versions = [&] {
    std::vector<uint64_t> v;
    EXPECT_TRUE(store_->ReadStream("order-1", 0, [&](const EventView& e) { return v.push_back(e.version), true; }).ok());
    return v;
  };
  StreamMetadata m;
  m.max_count = 2;
  ASSERT_TRUE(store_->SetStreamMetadata("order-1", m).ok());
  EXPECT_EQ((std::vector<uint64_t>{3, 4}), versions());
  m.max_count = 0;
  m.truncate_before = 1;
  ASSERT_TRUE(store_->SetStreamMetadata("order-1", m).ok());
  EXPECT_EQ((std::vector<uint64_t>{1, 2, 3, 4}), versions());
  m.truncate_before = 0;
  m.max_age_ns = 1;  // everything is older than a nanosecond by now
  ASSERT_TRUE(store_->SetStreamMetadata("order-1", m).ok());
  EXPECT_TRUE(versions().empty());
  m.max_age_ns = 3'600'000'000'000;
  ASSERT_TRUE(store_->SetStreamMetadata("order-1", m).ok());
  EXPECT_EQ(5u, versions().size());
  EXPECT_EQ(3'600'000'000'000, store_->GetStreamMetadata("order-1")->max_age_ns);
  // Soft delete: empty until written again, versions continue.
  ASSERT_TRUE(store_->DeleteStream("order-1", false).ok());
  EXPECT_TRUE(versions().empty());
  ASSERT_TRUE(Append("order-1", ExpectedVersion::Any(), {TestEvent("again")}).ok());
  EXPECT_EQ((std::vector<uint64_t>{5}), versions());
  // Hard delete: empty, and no append of any kind gets in.
  ASSERT_TRUE(store_->DeleteStream("order-1", true).ok());
  EXPECT_TRUE(versions().empty());
  EXPECT_EQ(StatusCode::kFailedPrecondition, Append("order-1", ExpectedVersion::Any(), {TestEvent("x")}).status().code());
  auto d = Data({TestEvent("y")});
  StreamAppend multi[] = {{"order-2", ExpectedVersion::Any(), d}, {"order-1", ExpectedVersion::Any(), d}};
  EXPECT_EQ(StatusCode::kFailedPrecondition, store_->AppendMulti(multi).status().code());
  EXPECT_FALSE(store_->GetStream("order-2").exists);  // the whole batch was refused
  EXPECT_EQ(StatusCode::kFailedPrecondition, store_->SetStreamMetadata("order-1", {}).code());
  // Bad input.
  EXPECT_EQ(StatusCode::kInvalidArgument, store_->SetStreamMetadata("$meta-x", {}).code());
  EXPECT_EQ(StatusCode::kNotFound, store_->DeleteStream("no-such", false).code());
  auto rep = store_->Verify();
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->ok());
}

// Invariant: a reader sees an event whole or redacted, never a mix. A visitor holding a view of an event
// while it is redacted keeps reading the original bytes (the redaction waits until the visit is over before
// it zeroes them); readers after it see the event redacted, its body all zeros.
TEST_F(EventStoreTest, AReaderSeesAnEventWholeOrRedactedNeverAMix) {
  const std::string secret(96, 's');
  uint64_t pos = 0;
  ASSERT_TRUE(Append("user-9", ExpectedVersion::NoStream(), {TestEvent(secret)}, {&pos, 1}).ok());
  std::atomic<bool> inside{false};
  std::string seen;
  bool seen_redacted = true;
  std::thread reader([&] {
    Status st = store_->ReadStream("user-9", 0, [&](const EventView& v) {
      inside = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the redaction runs meanwhile
      seen_redacted = v.redacted;
      seen.assign(v.payload.begin(), v.payload.end());
      return true;
    });
    EXPECT_TRUE(st.ok()) << st.ToString();
  });
  while (!inside) std::this_thread::yield();
  auto r = store_->Redact(pos);
  reader.join();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(seen_redacted);
  EXPECT_EQ(secret, seen);  // whole: not a byte zeroed under the visitor
  std::vector<EventView> after;
  ASSERT_TRUE(store_->ReadStream("user-9", 0, [&](const EventView& v) { return after.push_back(v), true; }).ok());
  ASSERT_EQ(1u, after.size());
  EXPECT_TRUE(after[0].redacted);
  EXPECT_EQ(secret.size(), after[0].payload.size());
  EXPECT_TRUE(std::all_of(after[0].payload.begin(), after[0].payload.end(), [](uint8_t b) { return b == 0; }));
  auto rep = store_->Verify();
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->ok()) << (rep->problems.empty() ? "" : rep->problems[0]);
}

// A redaction asked for inside a visit would wait for its own view: it is refused, and nothing changes.
// A reader that died inside its visit holds nobody up: its slot is taken back.
TEST_F(EventStoreTest, RedactionRefusesToWaitForItselfAndNotForTheDead) {
  uint64_t pos = 0;
  ASSERT_TRUE(Append("user-8", ExpectedVersion::NoStream(), {TestEvent("personal")}, {&pos, 1}).ok());
  Status inside;
  ASSERT_TRUE(store_->ReadStream("user-8", 0, [&](const EventView&) {
    inside = store_->Redact(pos).status();
    return true;
  }).ok());
  EXPECT_EQ(StatusCode::kFailedPrecondition, inside.code()) << inside.ToString();
  hfe::testing::Children kids;
  pid_t p = kids.Spawn([&] {
    auto s = EventStore::Open(dir_.Sub("store"), testing::SmallStore());
    if (!s.ok()) return 1;
    (void)(*s)->ReadStream("user-8", 0, [](const EventView&) {
      ::raise(SIGKILL);  // dies holding a view
      return true;
    });
    return 2;
  });
  ASSERT_EQ(128 + SIGKILL, kids.Wait(p));
  auto r = store_->Redact(pos);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->event.redacted);
}

// Invariant: a hard delete is decided in log order. An append that passed every check before the delete
// but reaches the log after it is refused; no event of the stream follows its tombstone. The appender here
// is stopped right after claiming its frame, the delete runs to completion meanwhile (the stalled frame is
// padded after the 1 ms unblock timeout), and the appender then retries with a frame behind the tombstone.
EventStore* g_racing_store = nullptr;
std::atomic<bool> g_delete_fired{false};
void DeleteVictimOnce(internal::FaultPoint p) {
  if (p != internal::FaultPoint::kAfterClaim || g_delete_fired.exchange(true)) return;
  std::thread([] { ASSERT_TRUE(g_racing_store->DeleteStream("victim", /*hard=*/true).ok()); }).join();
}

TEST_F(EventStoreTest, AHardDeleteRacingAnAppendIsDecidedInLogOrder) {
  auto o = testing::SmallStore();
  o.unblock_timeout_ms = 1;
  Open(o);
  ASSERT_TRUE(Append("victim", ExpectedVersion::NoStream(), {TestEvent("v0")}).ok());
  g_racing_store = store_.get();
  g_delete_fired = false;
  internal::g_fault_hook.store(&DeleteVictimOnce);
  auto late = Append("victim", ExpectedVersion::Any(), {TestEvent("late")});
  internal::g_fault_hook.store(nullptr);
  ASSERT_TRUE(g_delete_fired.load());
  EXPECT_EQ(StatusCode::kFailedPrecondition, late.status().code()) << late.status().ToString();
  EXPECT_TRUE(store_->GetStream("victim").hard_deleted);
  EXPECT_EQ(1u, store_->GetStream("victim").next_version);  // v0 only
  // Hard-deleting a stream that never existed also refuses it for good.
  ASSERT_TRUE(store_->DeleteStream("never-written", /*hard=*/true).ok());
  EXPECT_EQ(StatusCode::kFailedPrecondition, Append("never-written", ExpectedVersion::NoStream(), {TestEvent("x")}).status().code());
  EXPECT_FALSE(store_->GetStream("never-written").exists);
  auto rep = store_->Verify();
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  EXPECT_TRUE(rep->ok()) << (rep->problems.empty() ? "" : rep->problems[0]);
  // The refusal lives in the stream table: it holds across a reopen.
  Open(testing::SmallStore());
  EXPECT_EQ(StatusCode::kFailedPrecondition, Append("victim", ExpectedVersion::Any(), {TestEvent("later")}).status().code());
}

// Event ids are global: re-appending an id that stream A holds to stream B answers "already appended"
// with A's position, and names A as the stream that holds it.
TEST_F(EventStoreTest, AnIdHeldByAnotherStreamIsAnsweredWithThatStream) {
  TestEvent e("once");
  uint64_t pos = 0;
  ASSERT_TRUE(Append("stream-a", ExpectedVersion::Any(), {e}, {&pos, 1}).ok());
  auto again = Append("stream-b", ExpectedVersion::Any(), {e});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->already_appended);
  EXPECT_EQ(pos, again->first_position);
  EXPECT_EQ("stream-a", again->original_stream);
  EXPECT_FALSE(store_->GetStream("stream-b").exists);
}

// A forked child must not repeat its parent's ids: the store would take its events for duplicates.
// Invariant: a mapping holds no file descriptor, and segments whose indices collide in the per-process
// mapping table (index and index + 4096) are each read back as themselves. A child with a 64-descriptor
// limit appends 4,200 segments (one event each) and reads them all back, oldest first and by stream.
TEST(SegmentMapTest, ThousandsOfSegmentsUnderALowDescriptorLimit) {
  hfe::testing::TempDir dir;
  hfe::testing::Children kids;
  pid_t p = kids.Spawn([&] {
    struct rlimit lim{64, 64};
    if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) return 2;
    auto s = EventStore::Open(dir.Sub("store"), testing::SmallStore());
    if (!s.ok()) return 3;
    constexpr int kSegments = 4200;
    std::string body(60000, 'x');
    for (int i = 0; i < kSegments; ++i) {
      std::snprintf(body.data(), 16, "%015d", i);
      EventData d{EventId::Random(), 1, 0, {reinterpret_cast<const uint8_t*>(body.data()), body.size()}};
      auto r = (*s)->Append("segments", ExpectedVersion::Any(), {&d, 1});
      if (!r.ok()) {
        std::fprintf(stderr, "append %d: %s\n", i, r.status().ToString().c_str());
        return 4;
      }
    }
    int next = 0, wrong = 0;
    auto check = [&](const EventView& v) {
      if (std::string_view(reinterpret_cast<const char*>(v.payload.data()), 15) != std::string(15 - std::to_string(next).size(), '0') + std::to_string(next)) ++wrong;
      ++next;
      return true;
    };
    if (!(*s)->ReadAll(0, check).ok() || next != kSegments || wrong != 0) return 5;
    next = 0;
    if (!(*s)->ReadStream("segments", 0, check).ok() || next != kSegments || wrong != 0) return 6;
    return (*s)->Stats().segments >= kSegments ? 0 : 7;
  });
  EXPECT_EQ(0, kids.Wait(p));
}

TEST(EventIdTest, ForkedChildrenDrawDifferentIds) {
  (void)EventId::Random();  // the parent's generator is seeded before the fork
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    EventId id = EventId::Random();
    _exit(::write(fds[1], &id, sizeof id) == sizeof id ? 0 : 1);
  }
  EventId parent = EventId::Random();
  EventId child;
  ASSERT_EQ(::read(fds[0], &child, sizeof child), static_cast<ssize_t>(sizeof child));
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(fds[0]);
  ::close(fds[1]);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_NE(parent, child);
}

}  // namespace
}  // namespace hfe::store
