// The replayer: a time range and a type set, in log order, through several handlers; one that throws on
// every event has each of them parked while the others get them all and the replay finishes.
#include "handlers/replayer.h"

#include <gtest/gtest.h>

#include <mutex>
#include <stdexcept>
#include <thread>

#include "handlers/aggregates/request.h"
#include "ipc/clock.h"
#include "tests/store/store_testutil.h"

namespace hfe::handlers {
namespace {

class Recorder : public Handler {
 public:
  std::string_view name() const override { return "recorder"; }
  Status Handle(const Event& e) override {
    std::lock_guard<std::mutex> lock(mu_);
    seen.push_back(std::string(e.view.stream) + "/" + e.type_name);
    positions.push_back(e.view.position);
    return Status::Ok();
  }
  std::mutex mu_;
  std::vector<std::string> seen;
  std::vector<uint64_t> positions;
};

class Thrower : public Handler {
 public:
  std::string_view name() const override { return "thrower"; }
  Status Handle(const Event&) override { throw std::runtime_error("always"); }
};

TEST(ReplayerTest, TimeRangeAndTypesInLogOrderWhileAFailingHandlerIsParked) {
  hfe::testing::TempDir dir;
  auto s = store::EventStore::Open(dir.path(), store::testing::SmallStore());
  ASSERT_TRUE(s.ok());
  auto lifecycle = [&](const std::string& id, bool fail) {
    auto r = aggregates::Request::Create(id, "template-1", 1);
    ASSERT_TRUE(r->StartProvisioning().ok());
    ASSERT_TRUE(fail ? r->Fail("x", "E", "y").ok() : r->Complete({"m"}).ok());
    ASSERT_TRUE(r->Save(**s).ok());
  };
  for (int i = 0; i < 10; ++i) lifecycle("request-early-" + std::to_string(i), i % 2);
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  const int64_t from = clock::WallNanos();
  for (int i = 0; i < 20; ++i) lifecycle("request-late-" + std::to_string(i), i % 2);
  auto recorder = std::make_shared<Recorder>();
  Registry reg;
  reg.RegisterAll(recorder);
  reg.RegisterAll(std::make_shared<Thrower>());
  ReplayOptions o;
  o.from_ns = from;
  o.types = {static_cast<uint32_t>(schema::EventBody::RequestCompletedEvent),
             static_cast<uint32_t>(schema::EventBody::RequestFailedEvent)};
  o.dispatch.backoff_initial_us = 10;
  double last_done = 0;
  o.progress = [&](double done, uint64_t) { last_done = done; };
  auto r = Replay(**s, reg, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(20u, r->replayed);
  EXPECT_EQ(1.0, last_done);
  ASSERT_EQ(20u, recorder->seen.size());
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ("request-late-" + std::to_string(i) + (i % 2 ? "/RequestFailedEvent" : "/RequestCompletedEvent"),
              recorder->seen[static_cast<size_t>(i)]);
  }
  EXPECT_TRUE(std::is_sorted(recorder->positions.begin(), recorder->positions.end()));
  for (const auto& h : r->handlers) {
    if (h.handler == "thrower") {
      EXPECT_EQ(0u, h.processed);
      EXPECT_EQ(20u, h.parked);
    } else {
      EXPECT_EQ(20u, h.processed);
    }
  }
  EXPECT_EQ(20u, (*s)->GetStream("$parked-replay.thrower").next_version);
  // Bad ranges are refused before anything runs.
  o.to_ns = o.from_ns - 1;
  EXPECT_EQ(StatusCode::kInvalidArgument, Replay(**s, reg, o).status().code());
}

}  // namespace
}  // namespace hfe::handlers
