// Pipelined appends: AppendAsync commits and returns a ticket; Await, TryGet and Flush collect verdicts that
// are exactly what Append would have returned, in commit order, whoever resolved the frames.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <thread>
#include <vector>

#include "store/event_store.h"
#include "store/log_format.h"
#include "tests/store/store_testutil.h"

namespace hfe::store {
namespace {

using testing::TestEvent;

class PipelinedAppendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = EventStore::Open(dir_.Sub("store"), testing::SmallStore());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }
  hfe::testing::TempDir dir_;
  std::unique_ptr<EventStore> store_;
};

// Invariant: a producer may keep batches with exact expected versions of one stream in flight; each is
// decided against the stream as the batches before it left it, so all are accepted, gap-free, in order.
TEST_F(PipelinedAppendTest, BatchesInFlightAreDecidedInCommitOrder) {
  constexpr int kBatches = 200;
  std::vector<TestEvent> evs;
  for (int i = 0; i < kBatches; ++i) evs.emplace_back("e" + std::to_string(i));
  std::vector<AppendTicket> tickets;
  for (int i = 0; i < kBatches; ++i) {
    auto exp = i == 0 ? ExpectedVersion::NoStream() : ExpectedVersion::Exact(static_cast<uint64_t>(i - 1));
    auto t = store_->AppendAsync("request-1", exp, {&evs[i].data, 1});
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    tickets.push_back(*t);
  }
  for (int i = 0; i < kBatches; ++i) {
    uint64_t pos = 0;
    auto r = store_->Await(tickets[i], {&pos, 1});
    ASSERT_TRUE(r.ok()) << i << ": " << r.status().ToString();
    EXPECT_EQ(static_cast<uint64_t>(i), r->last_version);
    EXPECT_EQ(pos, r->first_position);
  }
  auto all = testing::ReadAll(*store_);
  ASSERT_EQ(static_cast<size_t>(kBatches), all.size());
  for (int i = 0; i < kBatches; ++i) {
    EXPECT_EQ(static_cast<uint64_t>(i), all[i].version);
    EXPECT_EQ(evs[i].text, all[i].payload);
  }
  auto rep = store_->Verify();
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->ok()) << (rep->problems.empty() ? "" : rep->problems[0]);
}

// Invariant: a conflict or a duplicate reaches the producer through its ticket, with Append's message and
// result, and a batch that expected a refused one is refused too.
TEST_F(PipelinedAppendTest, ConflictsAndDuplicatesReachTheTicket) {
  TestEvent a("a"), b("b"), c("c");
  auto ta = store_->AppendAsync("s", ExpectedVersion::NoStream(), {&a.data, 1});
  auto tb = store_->AppendAsync("s", ExpectedVersion::NoStream(), {&b.data, 1});  // conflicts with a
  auto tc = store_->AppendAsync("s", ExpectedVersion::Exact(1), {&c.data, 1});    // expected b's version
  auto ta2 = store_->AppendAsync("other", ExpectedVersion::Any(), {&a.data, 1});  // a's id again
  ASSERT_TRUE(ta.ok() && tb.ok() && tc.ok() && ta2.ok());
  ASSERT_TRUE(store_->Flush().ok());

  auto ra = store_->Await(*ta);
  ASSERT_TRUE(ra.ok()) << ra.status().ToString();
  auto rb = store_->Await(*tb);
  ASSERT_FALSE(rb.ok());
  EXPECT_EQ(StatusCode::kWrongExpectedVersion, rb.status().code());
  EXPECT_NE(std::string::npos, rb.status().message().find("stream \"s\": expected no stream, found version 0"))
      << rb.status().message();
  auto rc = store_->Await(*tc);
  ASSERT_FALSE(rc.ok());
  EXPECT_NE(std::string::npos, rc.status().message().find("expected version 1, found version 0")) << rc.status().message();
  auto ra2 = store_->Await(*ta2);
  ASSERT_TRUE(ra2.ok()) << ra2.status().ToString();
  EXPECT_TRUE(ra2->already_appended);
  EXPECT_EQ(ra->first_position, ra2->first_position);
  EXPECT_EQ("s", ra2->original_stream);
  // A verdict can be collected again, by Await or TryGet.
  auto again = store_->TryGet(*tb);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(StatusCode::kWrongExpectedVersion, again->status().code());
  EXPECT_EQ(1u, store_->GetStream("s").next_version);
  EXPECT_FALSE(store_->GetStream("other").exists);
}

// Invariant: Flush returns with every batch committed before it decided; TryGet never waits and, once the
// batch is decided, returns what Await returns.
TEST_F(PipelinedAppendTest, FlushDecidesEverythingCommittedAndTryGetAgrees) {
  std::vector<TestEvent> evs;
  for (int i = 0; i < 37; ++i) evs.emplace_back("x" + std::to_string(i));
  std::vector<AppendTicket> tickets;
  for (auto& e : evs) {
    auto t = store_->AppendAsync("stream-" + std::to_string(tickets.size() % 3), ExpectedVersion::Any(), {&e.data, 1});
    ASSERT_TRUE(t.ok());
    tickets.push_back(*t);
  }
  ASSERT_TRUE(store_->Flush().ok());
  EXPECT_GE(store_->ResolvedPosition(), tickets.back().position + tickets.back().length);
  for (const auto& t : tickets) {
    auto r = store_->TryGet(t);
    ASSERT_TRUE(r.has_value());
    ASSERT_TRUE(r->ok()) << r->status().ToString();
    auto w = store_->Await(t);
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(w->first_position, (*r)->first_position);
    EXPECT_EQ(w->last_version, (*r)->last_version);
    EXPECT_GT((*r)->first_position, t.position);
    EXPECT_LT((*r)->first_position, t.position + t.length);
  }
  EXPECT_EQ(37u, store_->Stats().events);
}

// Invariant: a ticket that names no batch this process committed to this store (another store's, a forged or
// misaligned one) is refused with a clear error, and an Await whose positions span is too small is refused
// without reading past it.
TEST_F(PipelinedAppendTest, ForeignOrForgedTicketsAreRefused) {
  TestEvent a("a"), b("b");
  auto t = store_->AppendAsync("s", ExpectedVersion::Any(), std::vector<EventData>{a.data, b.data});
  ASSERT_TRUE(t.ok());
  // Another store opened by this process, with a batch of the same shape at the same position.
  auto other = EventStore::Open(dir_.Sub("other"), testing::SmallStore());
  ASSERT_TRUE(other.ok());
  auto foreign = (*other)->AppendAsync("s", ExpectedVersion::Any(), std::vector<EventData>{a.data, b.data});
  ASSERT_TRUE(foreign.ok());
  ASSERT_EQ(t->position, foreign->position);
  auto with = [&](auto change) {
    AppendTicket k = *t;
    change(k);
    return k;
  };
  for (AppendTicket bad : {AppendTicket{}, *foreign, with([](AppendTicket& k) { k.position += 32; }),
                           with([](AppendTicket& k) { k.position += 8; }), with([](AppendTicket& k) { k.length += 32; }),
                           with([](AppendTicket& k) { k.events = 1; }), with([](AppendTicket& k) { k.position = 1ull << 60; }),
                           with([](AppendTicket& k) { k.store ^= 1; })}) {
    auto r = store_->Await(bad);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(StatusCode::kInvalidArgument, r.status().code()) << r.status().ToString();
    EXPECT_NE(std::string::npos, r.status().message().find("names no batch")) << r.status().message();
    auto g = store_->TryGet(bad);
    ASSERT_TRUE(g.has_value());
    EXPECT_EQ(StatusCode::kInvalidArgument, g->status().code());
  }
  uint64_t one = 0;
  auto r = store_->Await(*t, {&one, 1});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(StatusCode::kInvalidArgument, r.status().code());
  uint64_t two[2];
  auto ok = store_->Await(*t, two);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_LT(two[0], two[1]);
}

// Invariant: shared memory is untrusted, also while a pipelined batch waits to be decided. A committed
// frame scribbled before its resolution (a verdict forged to Accepted with a record pointing at stream entry
// 65535; a stream count beyond the limit) is refused as corrupt, never applied, and its ticket's Await
// reports the damage; nothing crashes and the store goes on. (ASan in CI checks for stray writes.)
TEST_F(PipelinedAppendTest, AFrameScribbledBeforeItsVerdictIsRefusedAsCorrupt) {
  TestEvent ok0("ok0"), bad1("bad1"), bad2("bad2"), ok3("ok3");
  auto t0 = store_->AppendAsync("s", ExpectedVersion::Any(), {&ok0.data, 1});
  auto t1 = store_->AppendAsync("s", ExpectedVersion::Any(), {&bad1.data, 1});
  auto t2 = store_->AppendAsync("s", ExpectedVersion::Any(), {&bad2.data, 1});
  ASSERT_TRUE(t0.ok() && t1.ok() && t2.ok());
  ASSERT_LT(store_->ResolvedPosition(), t1->position);  // undecided: fewer than 16 pipelined batches
  {
    const size_t size = testing::SmallStore().segment_size;
    int fd = ::open((dir_.Sub("store") + "/segments/0000000000000000.log").c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    auto* seg = static_cast<uint8_t*>(::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    ::close(fd);
    ASSERT_NE(MAP_FAILED, static_cast<void*>(seg));
    auto* f1 = reinterpret_cast<format::FrameHeader*>(seg + t1->position % size);
    f1->verdict = format::kVerdictAccepted;
    reinterpret_cast<format::RecordHeader*>(seg + t1->position % size + f1->records_offset)->stream_index = 65535;
    reinterpret_cast<format::FrameHeader*>(seg + t2->position % size)->stream_count = 5000;
    ::munmap(seg, size);
  }
  ASSERT_TRUE(store_->Flush().ok());
  EXPECT_TRUE(store_->Await(*t0).ok());
  for (const auto* t : {&*t1, &*t2}) {
    auto r = store_->Await(*t);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(StatusCode::kDataLoss, r.status().code()) << r.status().ToString();
  }
  EXPECT_EQ(2u, store_->Stats().corrupt_frames);
  auto t3 = store_->AppendAsync("s", ExpectedVersion::Exact(0), {&ok3.data, 1});
  ASSERT_TRUE(t3.ok());
  auto r3 = store_->Await(*t3);
  ASSERT_TRUE(r3.ok()) << r3.status().ToString();
  EXPECT_EQ(1u, r3->last_version);
  auto all = testing::ReadAll(*store_);
  ASSERT_EQ(2u, all.size());
  EXPECT_EQ("ok3", all[1].payload);
}

// Invariant: pipelined producers on several threads, each keeping batches in flight on its own stream with
// exact versions, and a reader polling all the while: every batch accepted, every stream gap-free. (Runs
// under the thread sanitizer in CI.)
TEST_F(PipelinedAppendTest, ConcurrentPipelinedProducersAndAReader) {
  constexpr int kThreads = 3, kPerThread = 400;
  std::atomic<bool> done{false};
  std::atomic<uint64_t> seen{0};
  std::thread reader([&] {
    while (!done.load()) {
      uint64_t n = 0;
      ASSERT_TRUE(store_->ReadAll(0, [&](const EventView&) { return ++n, true; }).ok());
      seen.store(n);
    }
  });
  std::vector<std::thread> producers;
  for (int p = 0; p < kThreads; ++p) {
    producers.emplace_back([&, p] {
      const std::string stream = "producer-" + std::to_string(p);
      std::vector<TestEvent> evs;
      for (int i = 0; i < kPerThread; ++i) evs.emplace_back(stream + "/" + std::to_string(i));
      std::vector<AppendTicket> tickets;
      for (int i = 0; i < kPerThread; ++i) {
        auto exp = i == 0 ? ExpectedVersion::NoStream() : ExpectedVersion::Exact(static_cast<uint64_t>(i - 1));
        auto t = store_->AppendAsync(stream, exp, {&evs[i].data, 1});
        ASSERT_TRUE(t.ok()) << t.status().ToString();
        tickets.push_back(*t);
        if (tickets.size() == 32) {
          for (const auto& k : tickets) ASSERT_TRUE(store_->Await(k).ok());
          tickets.clear();
        }
      }
      for (const auto& k : tickets) ASSERT_TRUE(store_->Await(k).ok());
    });
  }
  for (auto& t : producers) t.join();
  done.store(true);
  reader.join();
  std::map<std::string, uint64_t> next;
  for (const auto& e : testing::ReadAll(*store_)) EXPECT_EQ(next[e.stream]++, e.version) << e.stream;
  for (int p = 0; p < kThreads; ++p) EXPECT_EQ(static_cast<uint64_t>(kPerThread), next["producer-" + std::to_string(p)]);
}

}  // namespace
}  // namespace hfe::store
