// Audit handler: entries in the documented shape, rotation by size, a torn last line cut on open, and no
// duplicate entry after a handler process is SIGKILLed mid-run and restarted (hostfactory handle --handler audit).
#include "handlers/audit/audit_handler.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "handlers/aggregates/machine.h"
#include "handlers/aggregates/request.h"
#include "handlers/dispatcher.h"
#include "handlers/envelope.h"
#include "tests/handlers/handler_testutil.h"
#include "tests/store/store_testutil.h"

namespace hfe::handlers {
namespace {

using testing::ReadLines;

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::EventStore::Open(dir_.Sub("store"), store::testing::SmallStore());
    ASSERT_TRUE(s.ok());
    store_ = std::move(*s);
  }
  void Lifecycles(int n, int from = 0) {
    for (int i = from; i < from + n; ++i) {
      auto r = aggregates::Request::Create("request-" + std::to_string(i), "tpl-a", 1);
      ASSERT_TRUE(r->StartProvisioning().ok());
      ASSERT_TRUE(r->Save(*store_).ok());
      auto m = aggregates::Machine::Create("machine-" + std::to_string(i), "tpl-a", "request-" + std::to_string(i), "m5");
      ASSERT_TRUE(m->Save(*store_).ok());
    }
  }
  void Run(const AuditOptions& o) {
    auto audit = AuditHandler::Open(o);
    ASSERT_TRUE(audit.ok()) << audit.status().ToString();
    Registry reg;
    reg.RegisterAll(*audit);
    Dispatcher d(*store_, reg, {});
    ASSERT_TRUE(store_->ReadAll(0, [&](const store::EventView& v) { return d.Dispatch(v), true; }).ok());
    d.Drain();
  }
  hfe::testing::TempDir dir_;
  std::unique_ptr<store::EventStore> store_;
};

TEST_F(AuditTest, EntriesFollowTheDocumentedShape) {
  Lifecycles(2);
  Run({dir_.Sub("audit.jsonl")});
  auto lines = ReadLines(dir_.Sub("audit.jsonl"));
  ASSERT_EQ(6u, lines.size());
  EXPECT_EQ("REQUEST_CREATED", lines[0]["event_type"]);
  EXPECT_EQ("request-0", lines[0]["resource_id"]);
  EXPECT_EQ("tpl-a", lines[0]["details"]["template_id"]);
  EXPECT_EQ(1, lines[0]["details"]["machine_count"]);
  EXPECT_EQ("REQUEST_STATUS_CHANGED", lines[1]["event_type"]);
  EXPECT_EQ("in_progress", lines[1]["details"]["new_status"]);
  EXPECT_EQ("MACHINE_CREATED", lines[2]["event_type"]);
  EXPECT_EQ("machine-0", lines[2]["resource_id"]);
  for (const auto& l : lines) {
    for (const char* k : {"event_type", "resource_id", "details", "event_id", "position", "stream", "version", "occurred_at"}) {
      EXPECT_TRUE(l.contains(k)) << k;
    }
  }
  EXPECT_EQ("REQUEST_STATUS_CHANGED", AuditEventType("RequestStatusChangedEvent"));
  EXPECT_EQ("SLOW_QUERY_DETECTED", AuditEventType("SlowQueryDetectedEvent"));
}

TEST_F(AuditTest, ResourceIdComesFromTheEventAndStringsAreEscaped) {
  flatbuffers::FlatBufferBuilder b;
  auto body = schema::CreateResourcesCleanedEventDirect(b, "simulated", "local", "instance", "i-123", 1, "say \"bye\"\n");
  EnvelopeMeta meta;
  meta.event_id = store::EventId::Random();
  meta.stream_id = "provider-\"x\"";
  meta.stream_type = "provider";
  store::EventData d;
  FinishEnvelope(b, meta, schema::EventBody::ResourcesCleanedEvent, body.Union(), &d);
  ASSERT_TRUE(store_->Append(meta.stream_id, store::ExpectedVersion::Any(), {&d, 1}).ok());
  Run({dir_.Sub("audit.jsonl")});
  auto lines = ReadLines(dir_.Sub("audit.jsonl"));
  ASSERT_EQ(1u, lines.size());
  EXPECT_EQ("RESOURCES_CLEANED", lines[0]["event_type"]);
  EXPECT_EQ("i-123", lines[0]["resource_id"]);
  EXPECT_EQ("provider-\"x\"", lines[0]["stream"]);
  EXPECT_EQ("say \"bye\"\n", lines[0]["details"]["cleanup_reason"]);
}

TEST_F(AuditTest, RotatesBySizeAndKeepsEveryEntry) {
  Lifecycles(60);  // 180 entries of ~400 bytes
  AuditOptions o{dir_.Sub("audit.jsonl"), 16 * 1024, 10, 1};
  Run(o);
  size_t total = 0;
  std::set<uint64_t> positions;
  for (int i = 0; i <= 10; ++i) {
    std::string p = dir_.Sub("audit.jsonl") + (i ? "." + std::to_string(i) : "");
    for (const auto& l : ReadLines(p)) {
      ++total;
      positions.insert(l["position"].get<uint64_t>());
    }
  }
  EXPECT_EQ(180u, total);
  EXPECT_EQ(180u, positions.size());
  std::ifstream rotated(dir_.Sub("audit.jsonl.3"));
  EXPECT_TRUE(rotated.good());
}

TEST_F(AuditTest, TornLineIsCutAndRedeliveryWritesNothingTwice) {
  Lifecycles(5);
  Run({dir_.Sub("audit.jsonl")});
  ASSERT_EQ(15u, ReadLines(dir_.Sub("audit.jsonl")).size());
  { std::ofstream(dir_.Sub("audit.jsonl"), std::ios::app) << "{\"event_type\":\"REQUEST_CRE"; }  // a crash mid-write
  Lifecycles(3, 5);
  Run({dir_.Sub("audit.jsonl")});  // everything is delivered again from position 0
  auto lines = ReadLines(dir_.Sub("audit.jsonl"));
  ASSERT_EQ(24u, lines.size());
  std::set<uint64_t> positions;
  for (const auto& l : lines) positions.insert(l["position"].get<uint64_t>());
  EXPECT_EQ(24u, positions.size());
}

// Invariant: a handler process killed at a random moment and restarted leaves an audit log with every event
// exactly once.
TEST_F(AuditTest, KilledHandlerProcessLeavesNoDuplicate) {
  Lifecycles(400);
  const std::string store_dir = dir_.Sub("store");
  const std::string out = dir_.Sub("out");
  std::string cmd = std::string(HFE_CLI_PATH) + " --store " + store_dir +
                    " handle --subscription audit --handler audit --out " + out + " --idle-exit-ms 300 >/dev/null 2>&1";
  for (int round = 0; round < 3; ++round) {
    pid_t p = ::fork();
    if (p == 0) {
      ::execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::usleep(static_cast<useconds_t>(5000 + round * 7000));
    ::kill(p, SIGKILL);
    ::waitpid(p, nullptr, 0);
  }
  ASSERT_EQ(0, std::system(cmd.c_str()));  // a clean run to the end
  auto lines = ReadLines(out + "/audit.jsonl");
  std::set<uint64_t> positions;
  for (const auto& l : lines) positions.insert(l["position"].get<uint64_t>());
  EXPECT_EQ(1200u, lines.size());
  EXPECT_EQ(1200u, positions.size());
}

}  // namespace
}  // namespace hfe::handlers
