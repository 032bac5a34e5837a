// The command bus, the workflow handlers (with a fake command sink) and the simulated provider.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <set>

#include "handlers/aggregates/machine.h"
#include "handlers/aggregates/request.h"
#include "handlers/envelope.h"
#include "handlers/workflow/command_bus.h"
#include "handlers/workflow/command_bus_format.h"
#include "handlers/snapshot/compactor.h"
#include "handlers/workflow/provider.h"
#include "handlers/workflow/workflow_handler.h"
#include "ipc/clock.h"
#include "tests/store/store_testutil.h"

namespace hfe::handlers {
namespace {

using aggregates::Machine;
using aggregates::MachineStatus;
using aggregates::Request;
using aggregates::RequestStatus;
using schema::CommandBody;

std::vector<uint8_t> MonitorCommand(const std::string& machine) {
  flatbuffers::FlatBufferBuilder b;
  auto body = schema::CreateStartMonitoringCommandDirect(b, machine.c_str());
  auto bytes = FinishCommand(b, CommandBody::StartMonitoringCommand, body.Union(), store::EventId::Random(), 7);
  return {bytes.begin(), bytes.end()};
}

std::vector<std::string> Drain(CommandReceiver& rx) {
  std::vector<std::string> got;
  while (rx.Receive([&](const schema::Command& c) {
    got.push_back(c.body_as_StartMonitoringCommand()->machine_id()->str());
  }, 64) > 0) {
  }
  return got;
}

class CommandBusTest : public ::testing::Test {
 protected:
  hfe::testing::TempDir dir_;
};

TEST_F(CommandBusTest, EachSendersCommandsArriveInOrder) {
  auto rx = CommandReceiver::Open(dir_.path());
  ASSERT_TRUE(rx.ok()) << rx.status().ToString();
  auto a = CommandSender::Open(dir_.path());
  auto b = CommandSender::Open(dir_.path());  // a second sender of the same process gets its own ring
  ASSERT_TRUE(a.ok() && b.ok());
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE((*a)->Send(MonitorCommand("a-" + std::to_string(i))).ok());
    ASSERT_TRUE((*b)->Send(MonitorCommand("b-" + std::to_string(i))).ok());
  }
  auto got = Drain(**rx);
  ASSERT_EQ(200u, got.size());
  int next_a = 0, next_b = 0;
  for (const auto& g : got) {
    if (g[0] == 'a') EXPECT_EQ("a-" + std::to_string(next_a++), g);
    else EXPECT_EQ("b-" + std::to_string(next_b++), g);
  }
  auto info = InspectCommandBus(dir_.path());
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(200u, info->received);
  EXPECT_EQ(0u, info->pending);
  EXPECT_EQ(2u, info->senders.size());
  EXPECT_EQ(::getpid(), info->receiver_pid);
}

TEST_F(CommandBusTest, FullRingFailsAfterTheTimeoutAndOversizedCommandsAreRefused) {
  CommandBusOptions o;
  o.ring_capacity = 4;
  o.send_timeout_ms = 20;
  auto tx = CommandSender::Open(dir_.path(), o);
  ASSERT_TRUE(tx.ok());
  for (int i = 0; i < 4; ++i) ASSERT_TRUE((*tx)->Send(MonitorCommand("m" + std::to_string(i))).ok());
  Status full = (*tx)->Send(MonitorCommand("m4"));
  EXPECT_EQ(StatusCode::kUnavailable, full.code());
  EXPECT_NE(std::string::npos, full.message().find("no command handler")) << full.message();
  std::vector<uint8_t> huge(bus_format::kMaxCommandBytes + 1, 0);
  EXPECT_EQ(StatusCode::kInvalidArgument, (*tx)->Send(huge).code());
}

TEST_F(CommandBusTest, OneReceiverAtATimeAndADeadOneIsReplaced) {
  auto rx = CommandReceiver::Open(dir_.path());
  ASSERT_TRUE(rx.ok());
  auto second = CommandReceiver::Open(dir_.path());
  EXPECT_EQ(StatusCode::kFailedPrecondition, second.status().code());
  rx->reset();
  hfe::testing::Children kids;
  pid_t p = kids.Spawn([&] {
    auto r = CommandReceiver::Open(dir_.path());
    if (!r.ok()) return 1;
    ::_exit(0);  // dies holding the lease
  });
  ASSERT_EQ(0, kids.Wait(p));
  EXPECT_TRUE(CommandReceiver::Open(dir_.path()).ok());
}

TEST_F(CommandBusTest, CommandsCrossProcessesAndSurviveADeadSender) {
  auto rx = CommandReceiver::Open(dir_.path());
  ASSERT_TRUE(rx.ok());
  hfe::testing::Children kids;
  pid_t p = kids.Spawn([&] {
    auto tx = CommandSender::Open(dir_.path());
    if (!tx.ok()) return 1;
    for (int i = 0; i < 1000; ++i) {
      if (!(*tx)->Send(MonitorCommand("m" + std::to_string(i))).ok()) return 2;
    }
    ::_exit(0);  // exits without giving its slot back
  });
  std::vector<std::string> got;
  while (got.size() < 1000) {
    auto more = Drain(**rx);
    got.insert(got.end(), more.begin(), more.end());
    if (more.empty()) (*rx)->Wait(10'000'000);
  }
  ASSERT_EQ(0, kids.Wait(p));
  for (int i = 0; i < 1000; ++i) ASSERT_EQ("m" + std::to_string(i), got[static_cast<size_t>(i)]);
  // The dead sender's slot is taken over by the next sender.
  auto info = InspectCommandBus(dir_.path());
  ASSERT_TRUE(info.ok());
  ASSERT_EQ(1u, info->senders.size());
  EXPECT_FALSE(info->senders[0].alive);
  auto tx = CommandSender::Open(dir_.path());
  ASSERT_TRUE(tx.ok());
  ASSERT_TRUE((*tx)->Send(MonitorCommand("after")).ok());
  EXPECT_EQ(std::vector<std::string>{"after"}, Drain(**rx));
  info = InspectCommandBus(dir_.path());
  EXPECT_EQ(1u, info->senders.size());
}

TEST_F(CommandBusTest, AReceiverKilledWhileActingLeavesTheCommandToTheNext) {
  auto tx = CommandSender::Open(dir_.path());
  ASSERT_TRUE(tx.ok());
  for (const char* m : {"first", "second"}) ASSERT_TRUE((*tx)->Send(MonitorCommand(m)).ok());
  hfe::testing::Children kids;
  pid_t p = kids.Spawn([&] {
    auto rx = CommandReceiver::Open(dir_.path());
    if (!rx.ok()) return 1;
    (*rx)->Receive([](const schema::Command& c) {
      if (c.body_as_StartMonitoringCommand()->machine_id()->str() == "second") ::_exit(0);  // dies acting on it
    }, 64);
    return 2;
  });
  ASSERT_EQ(0, kids.Wait(p));
  auto rx = CommandReceiver::Open(dir_.path());
  ASSERT_TRUE(rx.ok()) << rx.status().ToString();
  EXPECT_EQ(std::vector<std::string>{"second"}, Drain(**rx));
}

TEST_F(CommandBusTest, ScribbledSlotsAreDroppedNotTrusted) {
  auto rx = CommandReceiver::Open(dir_.path());
  auto tx = CommandSender::Open(dir_.path());
  ASSERT_TRUE(rx.ok() && tx.ok());
  std::vector<uint8_t> garbage(64, 0xab);
  ASSERT_TRUE((*tx)->Send(garbage).ok());
  ASSERT_TRUE((*tx)->Send(MonitorCommand("good")).ok());
  EXPECT_EQ(std::vector<std::string>{"good"}, Drain(**rx));
  EXPECT_EQ(1u, (*rx)->rejected());
}

// A fake sink, as the documentation's handler tests use fakes of their services.
class RecordingSink : public CommandSink {
 public:
  explicit RecordingSink(std::vector<std::pair<CommandBody, std::string>>* out) : out_(out) {}
  Status Send(std::span<const uint8_t> bytes) override {
    flatbuffers::Verifier v(bytes.data(), bytes.size());
    if (!schema::VerifyCommandBuffer(v)) return InvalidArgument("not a command");
    const schema::Command* c = schema::GetCommand(bytes.data());
    std::string subject;
    switch (c->body_type()) {
      case CommandBody::StartProvisioningCommand: subject = c->body_as_StartProvisioningCommand()->request_id()->str(); break;
      case CommandBody::ConfirmRequestCommand: subject = c->body_as_ConfirmRequestCommand()->request_id()->str(); break;
      case CommandBody::CleanupRequestCommand: subject = c->body_as_CleanupRequestCommand()->request_id()->str(); break;
      case CommandBody::StartMonitoringCommand: subject = c->body_as_StartMonitoringCommand()->machine_id()->str(); break;
      case CommandBody::MarkMachineReadyCommand: subject = c->body_as_MarkMachineReadyCommand()->machine_id()->str(); break;
      case CommandBody::CleanupMachineCommand: subject = c->body_as_CleanupMachineCommand()->machine_id()->str(); break;
      default: break;
    }
    out_->emplace_back(c->body_type(), subject);
    return Status::Ok();
  }

 private:
  std::vector<std::pair<CommandBody, std::string>>* out_;
};

// Feeds every event of the store through the registry's handlers, as the dispatcher would.
void Deliver(const store::EventStore& s, const Registry& r) {
  ASSERT_TRUE(s.ReadAll(0, [&](const store::EventView& v) {
    const schema::Envelope* env = VerifiedEnvelope(v.payload);
    EXPECT_NE(nullptr, env);
    Event e{v, *env, EventTypeName(v.type)};
    for (Handler* h : r.For(v.type)) {
      if (h->CanHandle(e)) {
        EXPECT_TRUE(h->Handle(e).ok());
      }
    }
    return true;
  }).ok());
}

TEST(WorkflowHandlerTest, EventsBecomeTheirCommands) {
  hfe::testing::TempDir dir;
  auto s = store::EventStore::Open(dir.path(), store::testing::SmallStore());
  ASSERT_TRUE(s.ok());
  auto ok = Request::Create("request-1", "template-1", 2);
  ASSERT_TRUE(ok->Save(**s).ok());
  ASSERT_TRUE(ok->StartProvisioning().ok());
  ASSERT_TRUE(ok->Complete({"machine-1-0", "machine-1-1"}).ok());
  ASSERT_TRUE(ok->Save(**s).ok());
  auto bad = Request::Create("request-2", "template-1", 1);
  ASSERT_TRUE(bad->StartProvisioning().ok());
  ASSERT_TRUE(bad->Fail("no capacity", "InsufficientCapacity", "provider").ok());
  ASSERT_TRUE(bad->Save(**s).ok());
  auto ret = Request::Create("request-3", "template-1", 1, schema::RequestType::Return);  // not provisioned
  ASSERT_TRUE(ret->Save(**s).ok());
  auto m = Machine::Create("machine-1-0", "template-1", "request-1", "m5.large");
  ASSERT_TRUE(m->Provision("i-1", "10.0.0.1", "").ok());
  ASSERT_TRUE(m->ChangeStatus(MachineStatus::kStopping, "returned").ok());
  ASSERT_TRUE(m->Terminate("returned").ok());
  ASSERT_TRUE(m->Save(**s).ok());

  std::vector<std::pair<CommandBody, std::string>> sent;
  Registry r;
  RequestWorkflowHandler::RegisterIn(r, std::make_shared<RequestWorkflowHandler>(std::make_unique<RecordingSink>(&sent)));
  MachineWorkflowHandler::RegisterIn(r, std::make_shared<MachineWorkflowHandler>(std::make_unique<RecordingSink>(&sent)));
  Deliver(**s, r);
  std::vector<std::pair<CommandBody, std::string>> want{
      {CommandBody::StartProvisioningCommand, "request-1"}, {CommandBody::ConfirmRequestCommand, "request-1"},
      {CommandBody::StartProvisioningCommand, "request-2"}, {CommandBody::CleanupRequestCommand, "request-2"},
      {CommandBody::StartMonitoringCommand, "machine-1-0"}, {CommandBody::MarkMachineReadyCommand, "machine-1-0"},
      {CommandBody::CleanupMachineCommand, "machine-1-0"}};
  EXPECT_EQ(want, sent);
}

class ProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::EventStore::Open(dir_.path(), store::testing::SmallStore());
    ASSERT_TRUE(s.ok());
    store_ = std::move(*s);
  }
  std::string NewRequest(const std::string& id, int machines) {
    auto r = Request::Create(id, "template-1", machines);
    EXPECT_TRUE(r->Save(*store_).ok());
    return id;
  }
  std::vector<uint8_t> Command(CommandBody type, const std::string& subject) {
    b_.Clear();
    flatbuffers::Offset<void> body;
    switch (type) {
      case CommandBody::StartProvisioningCommand:
        body = schema::CreateStartProvisioningCommandDirect(b_, subject.c_str(), "template-1", 0).Union();
        break;
      case CommandBody::ConfirmRequestCommand: body = schema::CreateConfirmRequestCommandDirect(b_, subject.c_str()).Union(); break;
      case CommandBody::CleanupRequestCommand:
        body = schema::CreateCleanupRequestCommandDirect(b_, subject.c_str(), "failed").Union();
        break;
      case CommandBody::MarkMachineReadyCommand: body = schema::CreateMarkMachineReadyCommandDirect(b_, subject.c_str()).Union(); break;
      case CommandBody::CleanupMachineCommand:
        body = schema::CreateCleanupMachineCommandDirect(b_, subject.c_str(), "terminated").Union();
        break;
      default: body = schema::CreateStartMonitoringCommandDirect(b_, subject.c_str()).Union();
    }
    auto bytes = FinishCommand(b_, type, body, store::EventId::Random(), 0);
    return {bytes.begin(), bytes.end()};
  }
  Status Execute(SimulatedProvider& p, CommandBody type, const std::string& subject) {
    auto bytes = Command(type, subject);
    return p.Execute(*schema::GetCommand(bytes.data()));
  }
  // Ticks until nothing is due.
  void Settle(SimulatedProvider& p) {
    while (p.NextDueNs() != INT64_MAX) ASSERT_TRUE(p.Tick(p.NextDueNs()).ok());
  }
  uint64_t Events() { return store_->Stats().events; }
  static ProviderOptions Quick(double fail_rate = 0) {
    ProviderOptions o;
    o.min_delay_us = o.max_delay_us = 0;
    o.fail_rate = fail_rate;
    o.seed = 42;
    return o;
  }

  hfe::testing::TempDir dir_;
  std::unique_ptr<store::EventStore> store_;
  flatbuffers::FlatBufferBuilder b_;
};

TEST_F(ProviderTest, ProvisionsEveryMachineThenCompletesTheRequest) {
  SimulatedProvider p(*store_, Quick());
  NewRequest("request-a", 3);
  ASSERT_TRUE(Execute(p, CommandBody::StartProvisioningCommand, "request-a").ok());
  EXPECT_EQ(1u, p.requests_in_flight());
  Settle(p);
  auto r = Request::Load(*store_, "request-a");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(RequestStatus::kCompleted, r->status());
  EXPECT_STREQ("complete", r->outward_status());
  ASSERT_EQ(3u, r->machine_ids().size());
  for (const auto& id : r->machine_ids()) {
    auto m = Machine::Load(*store_, id);
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(MachineStatus::kRunning, m->status());
    EXPECT_FALSE(m->private_ip().empty());
    EXPECT_EQ("request-a", m->request_id());
  }
  EXPECT_EQ(0u, p.requests_in_flight());
  // Follow-ups: ready (a health check), confirmation; both once however often they arrive.
  const std::string m0 = SimulatedProvider::MachineId("request-a", 0);
  ASSERT_TRUE(Execute(p, CommandBody::MarkMachineReadyCommand, m0).ok());
  ASSERT_TRUE(Execute(p, CommandBody::ConfirmRequestCommand, "request-a").ok());
  const uint64_t after = Events();
  ASSERT_TRUE(Execute(p, CommandBody::MarkMachineReadyCommand, m0).ok());
  ASSERT_TRUE(Execute(p, CommandBody::ConfirmRequestCommand, "request-a").ok());
  ASSERT_TRUE(Execute(p, CommandBody::StartProvisioningCommand, "request-a").ok());
  EXPECT_EQ(after, Events());
  EXPECT_EQ("healthy", Machine::Load(*store_, m0)->health());
  EXPECT_EQ(3u, p.stats().already_done);
}

TEST_F(ProviderTest, FailuresGiveAFailedRequestAndCleanupTerminatesItsMachines) {
  SimulatedProvider p(*store_, Quick(/*fail_rate=*/1.0));
  NewRequest("request-b", 2);
  ASSERT_TRUE(Execute(p, CommandBody::StartProvisioningCommand, "request-b").ok());
  Settle(p);
  auto r = Request::Load(*store_, "request-b");
  EXPECT_EQ(RequestStatus::kFailed, r->status());
  EXPECT_STREQ("complete_with_error", r->outward_status());
  ASSERT_TRUE(Execute(p, CommandBody::CleanupRequestCommand, "request-b").ok());
  for (int k = 0; k < 2; ++k) {
    auto m = Machine::Load(*store_, SimulatedProvider::MachineId("request-b", k));
    EXPECT_EQ(MachineStatus::kTerminated, m->status());
  }
  const std::string m0 = SimulatedProvider::MachineId("request-b", 0);
  ASSERT_TRUE(Execute(p, CommandBody::CleanupMachineCommand, m0).ok());
  const uint64_t after = Events();
  ASSERT_TRUE(Execute(p, CommandBody::CleanupMachineCommand, m0).ok());  // the same event id: stored once
  ASSERT_TRUE(Execute(p, CommandBody::CleanupRequestCommand, "request-b").ok());
  EXPECT_EQ(after, Events());
}

TEST_F(ProviderTest, CommandsForWhatDoesNotExistOrCannotBeDoneAreRefusedClearly) {
  SimulatedProvider p(*store_, Quick());
  Status st = Execute(p, CommandBody::StartProvisioningCommand, "request-missing");
  EXPECT_EQ(StatusCode::kNotFound, st.code());
  NewRequest("request-c", 1);
  st = Execute(p, CommandBody::CleanupRequestCommand, "request-c");
  EXPECT_EQ(StatusCode::kFailedPrecondition, st.code());
  EXPECT_NE(std::string::npos, st.message().find("still pending")) << st.message();
  EXPECT_EQ(2u, p.stats().rejected);
  EXPECT_NE(std::string::npos, p.stats().last_error.find("CleanupRequestCommand"));
}

TEST_F(ProviderTest, LoadsAggregatesFromTheNewestSnapshotPlusTheirTail) {
  NewRequest("request-s", 2);
  auto c = Compactor::Open(*store_, {});
  ASSERT_TRUE(c.ok());
  auto r = (*c)->CompactOnce();
  ASSERT_TRUE(r.ok() && r->written);
  SimulatedProvider p(*store_, Quick());
  ASSERT_TRUE(Execute(p, CommandBody::StartProvisioningCommand, "request-s").ok());  // state from the snapshot
  Settle(p);
  EXPECT_EQ(RequestStatus::kCompleted, Request::Load(*store_, "request-s")->status());
  ASSERT_TRUE(Execute(p, CommandBody::ConfirmRequestCommand, "request-s").ok());  // snapshot + 2-event tail
  EXPECT_EQ(1u, p.stats().confirmations);
}

TEST_F(ProviderTest, ReconcileFinishesWhatACrashedProviderLeftWithoutDuplicates) {
  NewRequest("request-d", 3);
  NewRequest("request-e", 1);
  {
    // This provider starts both requests and provisions nothing: it "crashes" with work in flight.
    SimulatedProvider crashed(*store_, Quick());
    ASSERT_TRUE(Execute(crashed, CommandBody::StartProvisioningCommand, "request-d").ok());
  }
  SimulatedProvider p(*store_, Quick());
  auto n = p.Reconcile();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(2u, *n);
  Settle(p);
  for (const char* id : {"request-d", "request-e"}) {
    EXPECT_EQ(RequestStatus::kCompleted, Request::Load(*store_, id)->status()) << id;
  }
  // Each machine was created once: the streams hold exactly created, provisioned, status changed.
  for (int k = 0; k < 3; ++k) {
    EXPECT_EQ(3u, store_->GetStream(SimulatedProvider::MachineId("request-d", k)).next_version);
  }
  auto again = p.Reconcile();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(0u, *again);
}

}  // namespace
}  // namespace hfe::handlers
