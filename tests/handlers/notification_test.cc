// Notification handler: completed and failed requests notify, error-like events alert with a severity, the
// command hook receives entries, and a hanging hook is killed at its timeout without holding the dispatcher.
// Performance handler: latency per type and slow operations recorded once as events of their own.
#include "handlers/notification/notification_handler.h"

#include <gtest/gtest.h>

#include <fstream>

#include "handlers/aggregates/request.h"
#include "handlers/dispatcher.h"
#include "handlers/envelope.h"
#include "handlers/monitoring/performance_handler.h"
#include "ipc/clock.h"
#include "tests/handlers/handler_testutil.h"
#include "tests/store/store_testutil.h"

namespace hfe::handlers {
namespace {

using testing::ReadLines;

class NotificationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::EventStore::Open(dir_.Sub("store"), store::testing::SmallStore());
    ASSERT_TRUE(s.ok());
    store_ = std::move(*s);
    auto ok = aggregates::Request::Create("request-ok", "tpl", 2);
    ASSERT_TRUE(ok->StartProvisioning().ok());
    ASSERT_TRUE(ok->Complete({"m-1", "m-2"}).ok());
    ASSERT_TRUE(ok->Save(*store_).ok());
    auto bad = aggregates::Request::Create("request-bad", "tpl", 1);
    ASSERT_TRUE(bad->Fail("no capacity", "InsufficientCapacity", "provider refused").ok());
    ASSERT_TRUE(bad->Save(*store_).ok());
    auto slow = aggregates::Request::Create("request-slow", "tpl", 1);
    ASSERT_TRUE(slow->StartProvisioning().ok());
    ASSERT_TRUE(slow->TimeOut({}).ok());
    ASSERT_TRUE(slow->Save(*store_).ok());
  }
  void Feed(std::shared_ptr<Handler> h) {
    Registry reg;
    reg.RegisterAll(h);
    Dispatcher d(*store_, reg, {});
    ASSERT_TRUE(store_->ReadAll(0, [&](const store::EventView& v) { return d.Dispatch(v), true; }).ok());
    d.Drain();
  }
  hfe::testing::TempDir dir_;
  std::unique_ptr<store::EventStore> store_;
};

TEST_F(NotificationTest, NotifiesAlertsAndRunsTheHook) {
  NotificationOptions o;
  o.dir = dir_.path();
  o.hook = "cat >> " + dir_.Sub("hook.out");
  auto n = NotificationHandler::Open(o);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  Feed(*n);
  ASSERT_TRUE((*n)->WaitForHooks(10000));
  auto notes = ReadLines(dir_.Sub("notifications.jsonl"));
  ASSERT_EQ(2u, notes.size());
  EXPECT_EQ("Request Completed Successfully", notes[0]["title"]);
  EXPECT_EQ("Request request-ok completed with 2 machines", notes[0]["message"]);
  EXPECT_EQ("info", notes[0]["severity"]);
  EXPECT_EQ("Request Failed", notes[1]["title"]);
  EXPECT_EQ("error", notes[1]["severity"]);
  EXPECT_EQ("provider refused", notes[1]["details"]["failure_reason"]);
  auto alerts = ReadLines(dir_.Sub("alerts.jsonl"));
  ASSERT_EQ(2u, alerts.size());
  EXPECT_EQ("RequestFailedEvent", alerts[0]["event_type"]);
  EXPECT_EQ("error", alerts[0]["severity"]);
  EXPECT_EQ("Error event detected: RequestFailedEvent", alerts[0]["message"]);
  EXPECT_EQ("RequestTimeoutEvent", alerts[1]["event_type"]);
  EXPECT_EQ("warning", alerts[1]["severity"]);
  EXPECT_EQ(4u, ReadLines(dir_.Sub("hook.out")).size());  // every notification and alert reached the hook
  EXPECT_EQ(4u, (*n)->stats().hook_runs);
  EXPECT_EQ(0u, (*n)->stats().hook_failures);
}

TEST_F(NotificationTest, HangingHookIsKilledAndNeverBlocksTheDispatcher) {
  NotificationOptions o;
  o.dir = dir_.path();
  o.hook = "sleep 30";
  o.hook_timeout_ms = 100;
  o.hook_queue = 2;
  auto n = NotificationHandler::Open(o);
  ASSERT_TRUE(n.ok());
  Feed(*n);  // returns although the hook hangs: entries are written, hooks run on their own thread
  EXPECT_EQ(2u, ReadLines(dir_.Sub("notifications.jsonl")).size());
  ASSERT_TRUE((*n)->WaitForHooks(10000));
  auto st = (*n)->stats();
  EXPECT_GE(st.hook_timeouts, 1u);
  EXPECT_EQ(4u, st.hook_runs + st.hook_dropped);  // the queue holds 2: the rest were dropped, not waited for
}

TEST_F(NotificationTest, RedeliveryAfterRestartWritesNothingTwice) {
  NotificationOptions o;
  o.dir = dir_.path();
  {
    auto n = NotificationHandler::Open(o);
    ASSERT_TRUE(n.ok());
    Feed(*n);
  }
  auto again = NotificationHandler::Open(o);
  ASSERT_TRUE(again.ok());
  Feed(*again);
  EXPECT_EQ(2u, ReadLines(dir_.Sub("notifications.jsonl")).size());
  EXPECT_EQ(2u, ReadLines(dir_.Sub("alerts.jsonl")).size());
}

TEST_F(NotificationTest, PerformanceRecordsLatencyAndSlowOperationsOnce) {
  // An event that occurred a minute ago is slow when handled now.
  flatbuffers::FlatBufferBuilder b;
  auto body = schema::CreateHealthCheckEventDirect(b, "api");
  EnvelopeMeta meta;
  meta.event_id = store::EventId::Random();
  meta.stream_id = "system-1";
  meta.occurred_at_ns = clock::WallNanos() - 60'000'000'000;
  store::EventData d;
  FinishEnvelope(b, meta, schema::EventBody::HealthCheckEvent, body.Union(), &d);
  ASSERT_TRUE(store_->Append("system-1", store::ExpectedVersion::Any(), {&d, 1}).ok());
  auto perf = std::make_shared<PerformanceHandler>(*store_, PerformanceOptions{5.0, nullptr});
  Feed(perf);
  Feed(perf);  // delivered twice: the slow operation is recorded once
  EXPECT_EQ(1u, perf->slow_operations());
  auto summary = perf->Summary();
  EXPECT_EQ(2u, summary["HealthCheckEvent"].count);
  EXPECT_GT(summary["HealthCheckEvent"].p50_ms, 59'000.0);
  int recorded = 0;
  ASSERT_TRUE(store_->ReadStream("$performance", 0, [&](const store::EventView& v) {
    auto* p = schema::GetEnvelope(v.payload.data())->body_as_PerformanceMetricEvent();
    EXPECT_EQ("slow_event_processing", p->metric_name()->str());
    EXPECT_GT(p->metric_value(), 59.0);
    return ++recorded, true;
  }).ok());
  EXPECT_EQ(1, recorded);
}

}  // namespace
}  // namespace hfe::handlers
