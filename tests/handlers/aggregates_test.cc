// Domain aggregates: transitions raise the events of their family, illegal transitions are refused with a
// clear error and raise nothing, outward statuses follow the Host Factory's mapping, save uses the loaded
// version as the expectation (a stale copy cannot save), and load rebuilds exactly the saved state.
#include <gtest/gtest.h>

#include <map>

#include "handlers/aggregates/machine.h"
#include "handlers/aggregates/request.h"
#include "handlers/aggregates/template.h"
#include "tests/store/store_testutil.h"

namespace hfe::handlers::aggregates {
namespace {

using schema::EventBody;

std::vector<EventBody> Types(const AggregateRoot& a) {
  std::vector<EventBody> t;
  for (const auto& p : a.pending()) t.push_back(p.type);
  return t;
}

class AggregatesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::EventStore::Open(dir_.Sub("store"), store::testing::SmallStore());
    ASSERT_TRUE(s.ok());
    store_ = std::move(*s);
  }
  hfe::testing::TempDir dir_;
  std::unique_ptr<store::EventStore> store_;
};

TEST_F(AggregatesTest, RequestLifecycleRaisesItsEventsAndMapsOutwardStatus) {
  auto r = Request::Create("request-1", "tpl-a", 2, schema::RequestType::Provision, 600, {{"team", "hpc"}});
  ASSERT_TRUE(r.ok());
  EXPECT_STREQ("running", r->outward_status());
  ASSERT_TRUE(r->StartProvisioning().ok());
  EXPECT_EQ(RequestStatus::kInProgress, r->status());
  EXPECT_STREQ("running", r->outward_status());
  ASSERT_TRUE(r->Complete({"machine-1", "machine-2"}).ok());
  EXPECT_EQ(RequestStatus::kCompleted, r->status());
  EXPECT_STREQ("complete", r->outward_status());
  EXPECT_EQ((std::vector<EventBody>{EventBody::RequestCreatedEvent, EventBody::RequestStatusChangedEvent,
                                    EventBody::RequestCompletedEvent}),
            Types(*r));
  // Illegal: a completed request cannot fail, be cancelled or complete again; nothing is raised.
  Status s = r->Fail("boom", "E1", "late");
  EXPECT_EQ(StatusCode::kFailedPrecondition, s.code());
  EXPECT_EQ("request \"request-1\": cannot fail while completed (reload it: another process may have moved it on)",
            s.message());
  EXPECT_FALSE(r->Cancel("no").ok());
  EXPECT_FALSE(r->Complete({}).ok());
  EXPECT_EQ(3u, r->pending().size());
}

TEST_F(AggregatesTest, RequestEndingsMapToCompleteWithError) {
  auto partial = Request::Create("request-p", "tpl", 3);
  ASSERT_TRUE(partial->StartProvisioning().ok());
  ASSERT_TRUE(partial->Complete({"m-1"}).ok());
  EXPECT_EQ(RequestStatus::kPartial, partial->status());
  EXPECT_STREQ("complete_with_error", partial->outward_status());
  auto failed = Request::Create("request-f", "tpl", 1);
  ASSERT_TRUE(failed->Fail("no capacity", "InsufficientCapacity", "provider").ok());
  EXPECT_STREQ("complete_with_error", failed->outward_status());
  EXPECT_EQ("no capacity", failed->error());
  auto timed = Request::Create("request-t", "tpl", 1);
  ASSERT_TRUE(timed->StartProvisioning().ok());
  ASSERT_TRUE(timed->TimeOut({"m-9"}).ok());
  EXPECT_EQ(RequestStatus::kTimedOut, timed->status());
  EXPECT_STREQ("complete_with_error", timed->outward_status());
  auto cancelled = Request::Create("request-c", "tpl", 1);
  ASSERT_TRUE(cancelled->Cancel("user asked").ok());
  EXPECT_STREQ("complete_with_error", cancelled->outward_status());
  EXPECT_FALSE(cancelled->StartProvisioning().ok());
  EXPECT_EQ(StatusCode::kInvalidArgument, Request::Create("request-x", "tpl", 0).status().code());
}

TEST_F(AggregatesTest, SaveAndLoadRoundTripAndStaleCopiesCannotSave) {
  auto r = Request::Create("request-2", "tpl-b", 2, schema::RequestType::Return, 0, {{"owner", "ops"}});
  ASSERT_TRUE(r->Save(*store_).ok());
  EXPECT_EQ(0u, *r->version());
  EXPECT_TRUE(r->pending().empty());
  // Two processes load version 0; the first to save wins, the second is told to reload.
  auto a = Request::Load(*store_, "request-2");
  auto b = Request::Load(*store_, "request-2");
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(a->StartProvisioning().ok());
  ASSERT_TRUE(a->Save(*store_).ok());
  ASSERT_TRUE(b->StartProvisioning().ok());
  Status stale = b->Save(*store_);
  EXPECT_EQ(StatusCode::kWrongExpectedVersion, stale.code());
  EXPECT_NE(std::string::npos, stale.message().find("expected version 0, found version 1"));
  // Reloaded, it sees the other process's transition and refuses to repeat it.
  auto c = Request::Load(*store_, "request-2");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(RequestStatus::kInProgress, c->status());
  EXPECT_FALSE(c->StartProvisioning().ok());
  ASSERT_TRUE(c->Complete({"m-1", "m-2"}).ok());
  ASSERT_TRUE(c->Save(*store_).ok());
  auto d = Request::Load(*store_, "request-2");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(RequestStatus::kCompleted, d->status());
  EXPECT_EQ(2u, *d->version());
  EXPECT_EQ("tpl-b", d->template_id());
  EXPECT_EQ(schema::RequestType::Return, d->type());
  EXPECT_EQ((std::vector<std::string>{"m-1", "m-2"}), d->machine_ids());
  EXPECT_EQ((KeyValues{{"owner", "ops"}}), d->tags());
  EXPECT_EQ(StatusCode::kNotFound, Request::Load(*store_, "request-none").status().code());
}

TEST_F(AggregatesTest, MachineLifecycleAndAllowedTransitions) {
  auto m = Machine::Create("machine-1", "tpl-a", "request-1", "m5.large", "zone-a");
  ASSERT_TRUE(m.ok());
  EXPECT_STREQ("executing", m->outward_result());
  EXPECT_FALSE(m->HealthCheck("healthy", {}).ok());  // not running yet
  ASSERT_TRUE(m->Provision("i-123", "10.0.0.5", "192.0.2.5").ok());
  EXPECT_EQ(MachineStatus::kRunning, m->status());
  EXPECT_STREQ("succeed", m->outward_result());
  ASSERT_TRUE(m->HealthCheck("healthy", {{"cpu", "ok"}}).ok());
  EXPECT_FALSE(m->ChangeStatus(MachineStatus::kPending, "back").ok());
  ASSERT_TRUE(m->Terminate("request returned").ok());
  EXPECT_STREQ("fail", m->outward_result());
  EXPECT_FALSE(m->Terminate("again").ok());
  ASSERT_TRUE(m->Save(*store_).ok());
  auto l = Machine::Load(*store_, "machine-1");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(MachineStatus::kTerminated, l->status());
  EXPECT_EQ("i-123", l->instance_id());
  EXPECT_EQ("10.0.0.5", l->private_ip());
  EXPECT_EQ("192.0.2.5", l->public_ip());
  EXPECT_EQ("healthy", l->health());
  EXPECT_EQ("request-1", l->request_id());
  EXPECT_EQ(4u, *l->version());  // five events (created, provisioned, running, health check, terminated): 0..4
}

TEST_F(AggregatesTest, TemplateUpdatesCarryPreviousValuesAndDeletionIsFinal) {
  TemplateSpec spec;
  spec.name = "general";
  spec.instance_type = "m5.large";
  spec.max_count = 10;
  auto t = Template::Create("template-general", spec);
  ASSERT_TRUE(t.ok());
  ASSERT_TRUE(t->Validate("valid", {{"ami", "found"}}).ok());
  ASSERT_TRUE(t->Update({{"instance_type", "m5.xlarge"}, {"spot", "true"}}).ok());
  const auto* env = schema::GetEnvelope(t->pending().back().payload.data());
  auto* u = env->body_as_TemplateUpdatedEvent();
  ASSERT_NE(nullptr, u);
  auto prev = DecodeKeyValues(u->previous_values());
  std::map<std::string, std::string> p(prev.begin(), prev.end());
  EXPECT_EQ("m5.large", p["instance_type"]);
  EXPECT_EQ("", p["spot"]);  // a new key had no previous value
  EXPECT_EQ(1, u->version());
  ASSERT_TRUE(t->Save(*store_).ok());
  auto l = Template::Load(*store_, "template-general");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ("m5.xlarge", l->Get("instance_type"));
  EXPECT_EQ("true", l->Get("spot"));
  EXPECT_EQ("10", l->Get("max_count"));
  EXPECT_EQ("valid", l->validation());
  ASSERT_TRUE(l->Delete("retired").ok());
  EXPECT_TRUE(l->deleted());
  EXPECT_FALSE(l->Update({{"x", "y"}}).ok());
  EXPECT_FALSE(l->Validate("valid", {}).ok());
  ASSERT_TRUE(l->Save(*store_).ok());
  EXPECT_TRUE(Template::Load(*store_, "template-general")->deleted());
}

}  // namespace
}  // namespace hfe::handlers::aggregates
