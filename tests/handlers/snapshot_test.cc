// Snapshots: the property that the newest valid snapshot plus the tail gives exactly the state of a full
// replay, over random histories with compactions at random points, compactors SIGKILLed mid-write, and
// damaged or foreign snapshots that must be skipped; one compactor per store; aggregate loading from
// snapshot + tail.
#include <flatbuffers/idl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "handlers/envelope.h"
#include "schemas/events_schema_text.h"
#include "handlers/snapshot/compactor.h"
#include "handlers/snapshot/domain_state.h"
#include "handlers/host.h"
#include "store/snapshot.h"
#include "store/subscription.h"
#include "store/snapshot_format.h"
#include "tests/store/store_testutil.h"

namespace hfe::handlers {
namespace {

using aggregates::Machine;
using aggregates::MachineStatus;
using aggregates::Request;
using aggregates::Template;

store::StoreOptions Options() {
  store::StoreOptions o = store::testing::SmallStore();
  o.segment_size = 1 << 20;
  o.stream_capacity = 1 << 14;
  o.dedup_window = 1 << 16;
  return o;
}

// Random Host Factory activity: requests, machines and templates moving through legal and illegal
// transitions (refused ones write nothing), and events of other families.
class History {
 public:
  History(store::EventStore& s, uint64_t seed) : s_(s), rng_(seed) {}

  void Step() {
    switch (rng_() % 8) {
      case 0: {  // a new request
        std::string id = "request-" + std::to_string(next_++);
        auto r = Request::Create(id, "template-" + std::to_string(rng_() % 3), 1 + static_cast<int>(rng_() % 3));
        if (r->Save(s_).ok()) requests_.push_back(id);
        break;
      }
      case 1:
      case 2: {  // move a request on
        if (requests_.empty()) break;
        auto r = Request::Load(s_, requests_[rng_() % requests_.size()]);
        if (!r.ok()) break;
        switch (rng_() % 4) {
          case 0: (void)r->StartProvisioning(); break;
          case 1: (void)r->Complete({"m-a", "m-b"}); break;
          case 2: (void)r->Fail("no capacity", "E1", "provider"); break;
          default: (void)r->Cancel("user"); break;
        }
        (void)r->Save(s_);
        break;
      }
      case 3: {  // a new machine
        std::string id = "machine-" + std::to_string(next_++);
        auto m = Machine::Create(id, "template-1", requests_.empty() ? "request-x" : requests_.back(), "m5.large");
        if (m->Save(s_).ok()) machines_.push_back(id);
        break;
      }
      case 4: {  // move a machine on
        if (machines_.empty()) break;
        auto m = Machine::Load(s_, machines_[rng_() % machines_.size()]);
        if (!m.ok()) break;
        switch (rng_() % 4) {
          case 0: (void)m->Provision("i-" + std::to_string(rng_() % 1000), "10.0.0." + std::to_string(rng_() % 250), ""); break;
          case 1: (void)m->HealthCheck(rng_() % 2 ? "healthy" : "degraded", {{"cpu", std::to_string(rng_() % 100)}}); break;
          case 2: (void)m->ChangeStatus(MachineStatus::kStopping, "returned"); break;
          default: (void)m->Terminate("done"); break;
        }
        (void)m->Save(s_);
        break;
      }
      case 5: {  // templates
        std::string id = "template-" + std::to_string(rng_() % 3);
        auto t = Template::Load(s_, id);
        if (!t.ok()) {
          aggregates::TemplateSpec spec;
          spec.name = id;
          spec.instance_type = "m5.large";
          auto c = Template::Create(id, spec);
          (void)c->Save(s_);
          break;
        }
        if (rng_() % 3 == 0) (void)t->Validate("valid", {});
        else (void)t->Update({{"max_count", std::to_string(rng_() % 50)}});
        (void)t->Save(s_);
        break;
      }
      default: {  // another family: counted, no aggregate
        flatbuffers::FlatBufferBuilder b;
        auto body = schema::CreateResourceCreatedEventDirect(b, "sim", "local", "instance", "i-1");
        EnvelopeMeta meta;
        meta.event_id = store::EventId::Random();
        meta.stream_id = "resource-1";
        meta.stream_type = "resource";
        store::EventData d;
        FinishEnvelope(b, meta, schema::EventBody::ResourceCreatedEvent, body.Union(), &d);
        ASSERT_TRUE(s_.Append("resource-1", store::ExpectedVersion::Any(), {&d, 1}).ok());
      }
    }
  }

 private:
  store::EventStore& s_;
  std::mt19937_64 rng_;
  uint64_t next_ = 0;
  std::vector<std::string> requests_, machines_;
};

// A state as canonical JSON text (FlatBuffers' printer over the snapshot schema): two states are equal when
// their texts are (the bytes of two builds may differ in layout, not in content).
std::string Text(const std::vector<uint8_t>& payload) {
  flatbuffers::Parser parser;
  parser.opts.strict_json = true;
  parser.opts.output_default_scalars_in_json = true;
  std::string events = schema::kEventsSchemaText;
  std::string snapshot = schema::kSnapshotSchemaText;
  events = events.substr(0, events.find("root_type"));
  snapshot = snapshot.substr(snapshot.find("namespace hfe.schema;"));
  EXPECT_TRUE(parser.Parse((events + snapshot).c_str())) << parser.error_;
  std::string text;
  EXPECT_TRUE(flatbuffers::GenerateText(parser, payload.data(), &text));
  return text;
}

std::string FullReplay(const store::EventStore& s) {
  auto full = DomainState::Rebuild(s, {.use_snapshot = false});
  EXPECT_TRUE(full.ok());
  return Text(full->Serialize());
}

class SnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::EventStore::Open(dir_.path(), Options());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }
  hfe::testing::TempDir dir_;
  std::unique_ptr<store::EventStore> store_;
};

TEST_F(SnapshotTest, SnapshotPlusTailEqualsFullReplayOverRandomHistories) {
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    hfe::testing::TempDir dir;
    auto s = store::EventStore::Open(dir.path(), Options());
    ASSERT_TRUE(s.ok());
    History h(**s, seed);
    std::mt19937_64 rng(seed * 7919);
    auto compactor = Compactor::Open(**s, {});
    ASSERT_TRUE(compactor.ok());
    const int steps = 300 + static_cast<int>(rng() % 500);
    int snapshots = 0;
    for (int i = 0; i < steps; ++i) {
      h.Step();
      if (rng() % 97 == 0) {
        auto r = (*compactor)->CompactOnce();
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        snapshots += r->written;
      }
      if (rng() % 151 == 0) {
        // The property at an intermediate point too.
        RebuildReport rep;
        auto with = DomainState::Rebuild(**s, {}, &rep);
        ASSERT_TRUE(with.ok());
        EXPECT_EQ(FullReplay(**s), Text(with->Serialize()));
      }
    }
    RebuildReport rep;
    auto with = DomainState::Rebuild(**s, {}, &rep);
    ASSERT_TRUE(with.ok());
    EXPECT_TRUE(rep.warnings.empty());
    if (snapshots > 0) {
      EXPECT_NE(0u, rep.snapshot_position);
    }
    EXPECT_EQ(FullReplay(**s), Text(with->Serialize()));
    EXPECT_EQ((*s)->Stats().events, with->events());
  }
}

TEST_F(SnapshotTest, CompactorKilledMidWriteLeavesTheNewestWholeSnapshotInUse) {
  History h(*store_, 99);
  std::mt19937_64 rng(4242);
  for (int round = 0; round < 12; ++round) {
    for (int i = 0; i < 400; ++i) h.Step();
    hfe::testing::Children kids;
    pid_t p = kids.Spawn([&] {
      auto s = store::EventStore::Open(dir_.path(), {});
      if (!s.ok()) return 1;
      auto c = Compactor::Open(**s, {});
      if (!c.ok()) return 2;
      return (*c)->CompactOnce().ok() ? 0 : 3;
    });
    ::usleep(static_cast<useconds_t>(rng() % 20000));  // sometimes before, during or after the write
    kids.Kill(p);
    kids.Wait(p);
    RebuildReport rep;
    auto with = DomainState::Rebuild(*store_, {}, &rep);
    ASSERT_TRUE(with.ok()) << with.status().ToString();
    EXPECT_TRUE(rep.warnings.empty()) << rep.warnings.front();
    EXPECT_EQ(FullReplay(*store_), Text(with->Serialize())) << "round " << round;
  }
}

TEST_F(SnapshotTest, DamagedOrForeignSnapshotsAreSkippedWithAWarning) {
  History h(*store_, 5);
  for (int i = 0; i < 500; ++i) h.Step();
  auto c = Compactor::Open(*store_, {});
  ASSERT_TRUE(c.ok());
  auto first = (*c)->CompactOnce();
  ASSERT_TRUE(first.ok() && first->written);
  for (int i = 0; i < 300; ++i) h.Step();
  const auto whole = FullReplay(*store_);
  // A newer snapshot with a flipped payload byte, and one written by another schema.
  auto d = DomainState::Rebuild(*store_, {.use_snapshot = false});
  auto payload = d->Serialize();
  ASSERT_TRUE(store::WriteSnapshot(dir_.path(), d->position(), SnapshotSchemaHash() ^ 1, payload).ok());
  ASSERT_TRUE(store::WriteSnapshot(dir_.path(), d->position() + 1, SnapshotSchemaHash(), payload).ok());
  {
    auto list = store::ListSnapshots(dir_.path());
    ASSERT_TRUE(list.ok());
    std::fstream f(list->front().path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(sizeof(store::snapshot_format::SnapshotHeader) + payload.size() / 2));
    f.put('\x5a');  // one byte of the newest snapshot's payload flipped on disk
  }
  RebuildReport rep;
  auto with = DomainState::Rebuild(*store_, {}, &rep);
  ASSERT_TRUE(with.ok());
  ASSERT_EQ(2u, rep.warnings.size());
  EXPECT_NE(std::string::npos, rep.warnings[0].find("payload CRC mismatch")) << rep.warnings[0];
  EXPECT_NE(std::string::npos, rep.warnings[1].find("another event schema")) << rep.warnings[1];
  EXPECT_EQ(first->position, rep.snapshot_position);  // the previous good one
  EXPECT_EQ(whole, Text(with->Serialize()));
  // A file cut short.
  auto list = store::ListSnapshots(dir_.path());
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(0, ::truncate(list->back().path.c_str(), 100));
  rep = {};
  with = DomainState::Rebuild(*store_, {}, &rep);
  ASSERT_TRUE(with.ok());
  EXPECT_EQ(0u, rep.snapshot_position);
  EXPECT_EQ(3u, rep.warnings.size());
  EXPECT_EQ(whole, Text(with->Serialize()));
}

TEST_F(SnapshotTest, OneCompactorPerStore) {
  auto a = Compactor::Open(*store_, {});
  ASSERT_TRUE(a.ok());
  auto b = Compactor::Open(*store_, {});
  EXPECT_EQ(StatusCode::kFailedPrecondition, b.status().code());
  EXPECT_NE(std::string::npos, b.status().message().find("pid " + std::to_string(::getpid()))) << b.status().message();
  a->reset();
  EXPECT_TRUE(Compactor::Open(*store_, {}).ok());
}

TEST_F(SnapshotTest, AggregatesLoadFromSnapshotPlusTheirTail) {
  auto r = Request::Create("request-1", "template-1", 2);
  ASSERT_TRUE(r->Save(*store_).ok());
  auto c = Compactor::Open(*store_, {});
  ASSERT_TRUE((*c)->CompactOnce().ok());
  auto loaded = Request::Load(*store_, "request-1");
  ASSERT_TRUE(loaded->StartProvisioning().ok());
  ASSERT_TRUE(loaded->Complete({"m1", "m2"}).ok());
  ASSERT_TRUE(loaded->Save(*store_).ok());
  std::vector<std::string> warnings;
  auto file = store::SnapshotFile::NewestValid(dir_.path(), SnapshotSchemaHash(), &warnings);
  ASSERT_TRUE(file.ok() && *file);
  auto snap = DomainState::FromSnapshot(std::move(*file));
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(0u, *snap->FindRequest("request-1")->version());  // the snapshot has the created request only
  auto fast = LoadRequest(*store_, &*snap, "request-1");
  ASSERT_TRUE(fast.ok());
  EXPECT_EQ(2u, *fast->version());
  EXPECT_EQ(aggregates::RequestStatus::kCompleted, fast->status());
  EXPECT_EQ((std::vector<std::string>{"m1", "m2"}), fast->machine_ids());
  EXPECT_EQ(StatusCode::kNotFound, LoadRequest(*store_, &*snap, "request-404").status().code());
}

// Retention: appends 20 rounds of about two segments each (10x the window the snapshot and a subscription
// that keeps up leave), compacting and retiring after each; the store keeps a bounded number of segment
// files, stays verifiable, and snapshot + tail still equals the state a reader folded from every event.
TEST_F(SnapshotTest, RetentionKeepsDiskBoundedAndNothingAcknowledgedIsLost) {
  History h(*store_, 7);
  auto keeper = store::Subscription::Open(*store_, "keeper", {});
  ASSERT_TRUE(keeper.ok());
  DomainState shadow;  // folded from every event as the subscription delivers it
  CompactorOptions co;
  co.retire = true;
  auto c = Compactor::Open(*store_, co);
  ASSERT_TRUE(c.ok());
  const uint64_t seg = store_->Stats().segment_size;
  uint64_t max_files = 0, retired = 0;
  for (int round = 0; round < 20; ++round) {
    const uint64_t target = store_->Stats().tail_position + 2 * seg;
    while (store_->Stats().tail_position < target) h.Step();
    for (;;) {
      auto n = (*keeper)->Poll([&](const store::EventView& v) { return shadow.Apply(v), true; }, 1024);
      ASSERT_TRUE(n.ok());
      if (*n == 0) break;
    }
    (*keeper)->AckDelivered();
    auto r = (*c)->CompactOnce();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_TRUE(r->retention.has_value());
    retired += r->retention->segments_retired;
    uint64_t files = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir_.path() + "/segments")) files += e.is_regular_file();
    max_files = std::max(max_files, files);
  }
  EXPECT_GE(retired, 30u);
  EXPECT_LE(max_files, 4u) << "segment files must stay bounded";
  EXPECT_LE(store_->Stats().segments, 3u);
  auto rep = store_->Verify();
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->ok()) << (rep->problems.empty() ? "" : rep->problems.front());
  // The log's head is gone, the state is not: snapshot + tail equals what the subscriber folded.
  auto rebuilt = DomainState::Rebuild(*store_);
  ASSERT_TRUE(rebuilt.ok());
  EXPECT_EQ(Text(shadow.Serialize()), Text(rebuilt->Serialize()));
  // Reads start at the oldest segment left; a long stream keeps its newest events.
  uint64_t first_version = UINT64_MAX, count = 0;
  ASSERT_TRUE(store_->ReadStream("resource-1", 0, [&](const store::EventView& v) {
    first_version = std::min(first_version, v.version);
    return ++count, true;
  }).ok());
  EXPECT_GT(first_version, 0u);
  EXPECT_EQ(store_->GetStream("resource-1").next_version, first_version + count);
  // The first request's events are all retired; it loads from the snapshot.
  EXPECT_TRUE(LoadRequest(*store_, &*rebuilt, "request-0").ok());
}

TEST_F(SnapshotTest, ALaggingSubscriptionHoldsItsSegmentsOrIsDroppedWhenDetached) {
  History h(*store_, 11);
  { auto slow = store::Subscription::Open(*store_, "slow", {}); ASSERT_TRUE(slow.ok()); }  // never acks
  const uint64_t seg = store_->Stats().segment_size;
  while (store_->Stats().tail_position < 6 * seg) h.Step();
  CompactorOptions co;
  co.retire = true;
  co.retention.max_lag_bytes = seg;
  {
    auto c = Compactor::Open(*store_, co);
    auto r = (*c)->CompactOnce();
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(0u, r->retention->segments_retired);
    EXPECT_NE(std::string::npos, r->retention->held_by.find("\"slow\"")) << r->retention->held_by;
    ASSERT_EQ(1u, r->retention->holding.size());
    EXPECT_NE(std::string::npos, r->retention->holding[0].find("held")) << r->retention->holding[0];
  }
  co.retention.lagging = store::RetentionOptions::Lagging::kDrop;
  auto c = Compactor::Open(*store_, co);
  for (int i = 0; i < 50; ++i) h.Step();
  auto r = (*c)->CompactOnce();
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(1u, r->retention->dropped.size());
  EXPECT_NE(std::string::npos, r->retention->dropped[0].find("\"slow\"")) << r->retention->dropped[0];
  EXPECT_GE(r->retention->segments_retired, 4u);
  EXPECT_TRUE(store::Subscription::List(*store_)->empty());
}

// A handler host in another process unmaps the segments retention retired once it is idle, so tmpfs frees
// them: its /proc/<pid>/maps then shows no deleted segment file.
TEST_F(SnapshotTest, AHandlerHostReleasesRetiredSegmentsWhenIdle) {
  // A real handler process (exec'd: a forked child would also hold this process's mappings).
  hfe::testing::Children kids;
  pid_t host = kids.Spawn([&] {
    const std::string cmd = std::string(HFE_CLI_PATH) + " --store " + dir_.path() +
                            " handle --subscription h --handler count --idle-exit-ms 3000 >/dev/null 2>&1";
    ::execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), static_cast<char*>(nullptr));
    return 127;
  });
  History hist(*store_, 3);
  const uint64_t seg = store_->Stats().segment_size;
  while (store_->Stats().tail_position < 4 * seg) hist.Step();
  auto deleted_segments = [&] {
    std::ifstream maps("/proc/" + std::to_string(host) + "/maps");
    int n = 0;
    for (std::string l; std::getline(maps, l);) {
      n += l.find("/segments/") != std::string::npos && l.find("(deleted)") != std::string::npos;
    }
    return n;
  };
  // Wait until the host acknowledged everything, then retire.
  for (int i = 0; i < 400; ++i) {
    auto subs = store::Subscription::List(*store_);
    if (subs.ok() && subs->size() == 1 && (*subs)[0].cursor >= store_->ResolvedPosition()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CompactorOptions co;
  co.retire = true;
  auto c = Compactor::Open(*store_, co);
  auto r = (*c)->CompactOnce();
  ASSERT_TRUE(r.ok());
  ASSERT_GE(r->retention->segments_retired, 2u);
  int left = -1;
  for (int i = 0; i < 100 && left != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    left = deleted_segments();
  }
  EXPECT_EQ(0, left) << "the host still maps retired segments";
  EXPECT_EQ(0, kids.Wait(host));
}

}  // namespace
}  // namespace hfe::handlers
