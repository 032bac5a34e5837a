// Metrics handler: counters and histograms equal what the log holds, the exposition is valid Prometheus text,
// counts survive a restart without double counting, and the loopback endpoint serves them.
#include "handlers/monitoring/metrics_handler.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <map>

#include "handlers/aggregates/request.h"
#include "handlers/dispatcher.h"
#include "handlers/envelope.h"
#include "tests/store/store_testutil.h"

namespace hfe::handlers {
namespace {

class MetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::EventStore::Open(dir_.Sub("store"), store::testing::SmallStore());
    ASSERT_TRUE(s.ok());
    store_ = std::move(*s);
    for (int i = 0; i < 20; ++i) {
      auto r = aggregates::Request::Create("request-" + std::to_string(i), i % 2 ? "tpl-a" : "tpl-b", 1 + i % 4);
      ASSERT_TRUE(r->StartProvisioning().ok());
      if (i % 5 != 0) {
        ASSERT_TRUE(r->Complete({"m"}).ok());
      }
      ASSERT_TRUE(r->Save(*store_).ok());
    }
  }
  void Feed(const std::shared_ptr<MetricsHandler>& m) {
    Registry reg;
    reg.RegisterAll(m);
    Dispatcher d(*store_, reg, {});
    ASSERT_TRUE(store_->ReadAll(0, [&](const store::EventView& v) { return d.Dispatch(v), true; }).ok());
    d.Drain();
    ASSERT_TRUE(d.Flush().ok());
    EXPECT_EQ(store_->ResolvedPosition() > 0, d.CompletedThrough() > 0);
  }
  hfe::testing::TempDir dir_;
  std::unique_ptr<store::EventStore> store_;
};

TEST_F(MetricsTest, CountersMatchTheLogAndSurviveRestart) {
  std::map<std::string, int> by_type;
  ASSERT_TRUE(store_->ReadAll(0, [&](const store::EventView& v) { return ++by_type[EventTypeName(v.type)], true; }).ok());
  MetricsOptions o;
  o.path = dir_.Sub("metrics.prom");
  o.write_every = 7;
  {
    auto m = MetricsHandler::Open(o);
    ASSERT_TRUE(m.ok());
    Feed(*m);
    for (const auto& [type, n] : by_type) {
      EXPECT_EQ(n, (*m)->Counter("domain_events_total", "event_type=\"" + type + "\"")) << type;
    }
    EXPECT_EQ(10, (*m)->Counter("requests_created_total", "template_id=\"tpl-a\",request_type=\"Provision\""));
    EXPECT_EQ(8, (*m)->Counter("requests_completed_total", "template_id=\"tpl-a\""));
    std::string text = (*m)->Exposition();
    EXPECT_NE(std::string::npos, text.find("# TYPE request_machine_count histogram"));
    EXPECT_NE(std::string::npos, text.find("request_machine_count_bucket{template_id=\"tpl-a\",le=\"+Inf\"} 10"));
    EXPECT_NE(std::string::npos, text.find("request_duration_seconds_count{template_id=\"tpl-b\"} 8"));
  }
  // Restarted: the counts come back from the file, and everything delivered again is at or before its
  // checkpoint, so nothing is counted twice.
  auto again = MetricsHandler::Open(o);
  ASSERT_TRUE(again.ok());
  Feed(*again);
  EXPECT_EQ(by_type["RequestCreatedEvent"], (*again)->Counter("domain_events_total", "event_type=\"RequestCreatedEvent\""));
  std::ifstream f(o.path);
  std::string first;
  std::getline(f, first);
  EXPECT_EQ(0u, first.find("# HELP "));
}

TEST_F(MetricsTest, LoopbackEndpointServesTheExposition) {
  MetricsOptions o;
  std::shared_ptr<MetricsHandler> m;
  for (int port = 20000 + ::getpid() % 20000, tries = 0; tries < 20 && !m; ++port, ++tries) {
    o.port = port;
    auto r = MetricsHandler::Open(o);
    if (r.ok()) m = *r;
  }
  ASSERT_TRUE(m) << "no free loopback port";
  Feed(m);
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(m->port()));
  ASSERT_EQ(0, ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr));
  const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
  ASSERT_EQ(static_cast<ssize_t>(sizeof req - 1), ::send(fd, req, sizeof req - 1, 0));
  std::string resp;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) resp.append(buf, static_cast<size_t>(n));
  ::close(fd);
  EXPECT_EQ(0u, resp.find("HTTP/1.0 200 OK"));
  EXPECT_NE(std::string::npos, resp.find("domain_events_total{event_type=\"RequestCreatedEvent\"} 20"));
}

}  // namespace
}  // namespace hfe::handlers
