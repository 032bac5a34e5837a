// Dispatcher: every handler of an event runs; a failing or throwing handler is retried then parked while the
// others finish; each handler sees its events in log order; checkpoints skip redelivered events; the ack
// point only passes events every handler finished; stats count what happened.
#include "handlers/dispatcher.h"

#include <gtest/gtest.h>

#include <mutex>
#include <stdexcept>

#include "handlers/aggregates/request.h"
#include "store/consumer_group.h"
#include "tests/store/store_testutil.h"

namespace hfe::handlers {
namespace {

class Recorder : public Handler {
 public:
  explicit Recorder(std::string n) : name_(std::move(n)) {}
  std::string_view name() const override { return name_; }
  Status Handle(const Event& e) override {
    std::lock_guard<std::mutex> lock(mu_);
    seen_.push_back(e.view.position);
    return Status::Ok();
  }
  std::vector<uint64_t> seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }
  uint64_t checkpoint = 0;
  uint64_t Checkpoint() const override { return checkpoint; }

 private:
  std::string name_;
  std::mutex mu_;
  std::vector<uint64_t> seen_;
};

class Thrower : public Handler {
 public:
  std::string_view name() const override { return "thrower"; }
  Status Handle(const Event&) override { throw std::runtime_error("notification service exploded"); }
  void OnError(const Event&, const Status&) override { ++errors; }
  std::atomic<int> errors{0};
};

class FailsOnCompleted : public Handler {
 public:
  std::string_view name() const override { return "picky"; }
  Status Handle(const Event& e) override {
    if (e.envelope.body_type() == schema::EventBody::RequestCompletedEvent) {
      return Status(StatusCode::kUnavailable, "metrics backend down");
    }
    return Status::Ok();
  }
};

class DispatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::EventStore::Open(dir_.Sub("store"), store::testing::SmallStore());
    ASSERT_TRUE(s.ok());
    store_ = std::move(*s);
    // 30 request lifecycles: created, in progress, completed.
    for (int i = 0; i < 30; ++i) {
      auto r = aggregates::Request::Create("request-" + std::to_string(i), "tpl", 1);
      ASSERT_TRUE(r->StartProvisioning().ok());
      ASSERT_TRUE(r->Complete({"m-" + std::to_string(i)}).ok());
      ASSERT_TRUE(r->Save(*store_).ok());
    }
    ASSERT_TRUE(store_->ReadAll(0, [&](const store::EventView& v) { return events_.push_back(v), true; }).ok());
    ASSERT_EQ(90u, events_.size());
  }
  hfe::testing::TempDir dir_;
  std::unique_ptr<store::EventStore> store_;
  std::vector<store::EventView> events_;
};

TEST_F(DispatcherTest, FailuresAreIsolatedRetriedAndParked) {
  Registry reg;
  auto good = std::make_shared<Recorder>("audit");
  auto thrower = std::make_shared<Thrower>();
  auto picky = std::make_shared<FailsOnCompleted>();
  reg.RegisterAll(good);
  reg.Register(schema::EventBody::RequestCreatedEvent, thrower);
  reg.RegisterAll(picky);
  DispatcherOptions o;
  o.workers = 3;
  o.retry_budget = 3;
  o.backoff_initial_us = 10;
  o.parking_owner = "audit-sub";
  {
    Dispatcher d(*store_, reg, o);
    for (const auto& v : events_) d.Dispatch(v);
    d.Drain();
    EXPECT_EQ(events_.back().position + 1, d.CompletedThrough());
    auto stats = d.Stats();
    ASSERT_EQ(3u, stats.size());
    EXPECT_EQ("audit", stats[0].handler);
    EXPECT_EQ(90u, stats[0].processed);
    EXPECT_EQ(1.0, stats[0].success_rate);
    EXPECT_GT(stats[0].latency_max_ns, 0u);
    EXPECT_EQ(30u, stats[0].processed_by_type["RequestCompletedEvent"]);
    EXPECT_EQ("thrower", stats[1].handler);
    EXPECT_EQ(0u, stats[1].processed);
    EXPECT_EQ(90u, stats[1].failed);    // 30 events x 3 attempts
    EXPECT_EQ(60u, stats[1].retried);
    EXPECT_EQ(30u, stats[1].parked);
    EXPECT_EQ(0.0, stats[1].success_rate);
    EXPECT_EQ("picky", stats[2].handler);
    EXPECT_EQ(60u, stats[2].processed);
    EXPECT_EQ(30u, stats[2].parked);
  }
  EXPECT_EQ(30, thrower->errors.load());
  // Every handler saw its events in log order.
  auto seen = good->seen();
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(90u, seen.size());
  // The parked events carry the handler's error.
  int parked = 0;
  ASSERT_TRUE(store_->ReadStream("$parked-audit-sub.thrower", 0, [&](const store::EventView& v) {
    auto* p = schema::GetEnvelope(v.payload.data())->body_as_ParkedEvent();
    EXPECT_NE(std::string::npos, p->error()->str().find("notification service exploded"));
    ++parked;
    return true;
  }).ok());
  EXPECT_EQ(30, parked);
}

TEST_F(DispatcherTest, CheckpointSkipsRedeliveredEvents) {
  Registry reg;
  auto h = std::make_shared<Recorder>("idempotent");
  h->checkpoint = events_[59].position;  // it already applied the first 60
  reg.RegisterAll(h);
  Dispatcher d(*store_, reg, {});
  for (const auto& v : events_) d.Dispatch(v);
  d.Drain();
  auto seen = h->seen();
  ASSERT_EQ(30u, seen.size());
  EXPECT_EQ(events_[60].position, seen.front());
  EXPECT_EQ(60u, d.Stats()[0].skipped);
}

TEST_F(DispatcherTest, AckPointWaitsForTheSlowestHandler) {
  class Gate : public Handler {
   public:
    std::string_view name() const override { return "gate"; }
    Status Handle(const Event&) override {
      while (!open.load()) std::this_thread::yield();
      return Status::Ok();
    }
    std::atomic<bool> open{false};
  };
  Registry reg;
  auto gate = std::make_shared<Gate>();
  reg.RegisterAll(std::make_shared<Recorder>("fast"));
  reg.RegisterAll(gate);
  Dispatcher d(*store_, reg, {});
  d.Dispatch(events_[0]);
  d.Dispatch(events_[1]);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(0u, d.CompletedThrough());  // the fast handler finished, the gate did not
  gate->open = true;
  d.Drain();
  EXPECT_EQ(events_[1].position + 1, d.CompletedThrough());
  auto mappings = reg.Mappings();
  ASSERT_FALSE(mappings.empty());
  EXPECT_EQ("RequestCreatedEvent", mappings[0].first);
  EXPECT_EQ((std::vector<std::string>{"fast", "gate"}), mappings[0].second);
}

}  // namespace
}  // namespace hfe::handlers
