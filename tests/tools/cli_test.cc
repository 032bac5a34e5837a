// The hostfactory binary: publish / read / verify / stats end to end, and bad input that gets a one-line
// error, a non-zero exit, and writes nothing.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "tests/testutil.h"

namespace {

struct CliRun {
  int code;
  std::string out;
  std::string err;
};

// Runs the CLI with `args` (shell-quoted by the caller), optional stdin text.
CliRun Cli(const std::string& args, const std::string& stdin_text = "") {
  hfe::testing::TempDir tmp;
  std::string in = tmp.Sub("in"), out = tmp.Sub("out"), err = tmp.Sub("err");
  std::ofstream(in) << stdin_text;
  std::string cmd = std::string(HFE_CLI_PATH) + " " + args + " <" + in + " >" + out + " 2>" + err;
  int status = std::system(cmd.c_str());
  auto slurp = [](const std::string& p) {
    std::ifstream f(p);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  };
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
}

int Lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

class CliTest : public ::testing::Test {
 protected:
  std::string S() const { return "--store " + dir_.Sub("store") + " --segment-mb 1 --stream-capacity 1024 --dedup-window 1024 "; }
  uint64_t Events() {
    CliRun r = Cli(S() + "--json stats");
    EXPECT_EQ(0, r.code) << r.err;
    return nlohmann::json::parse(r.out)["events"].get<uint64_t>();
  }
  hfe::testing::TempDir dir_;
};

TEST_F(CliTest, PublishReadVerifyStats) {
  CliRun p = Cli(S() + "--json publish --stream request-1 --type RequestCreatedEvent --expected-version no-stream "
                    "--event-id 3f2504e0-4f89-41d3-9a0c-0305e82c3301 "
                    "--data '{\"request_id\":\"request-1\",\"template_id\":\"tpl\",\"machine_count\":2}'");
  ASSERT_EQ(0, p.code) << p.err;
  auto pj = nlohmann::json::parse(p.out);
  EXPECT_EQ("appended", pj["result"]);
  EXPECT_EQ(0, pj["version"]);

  // A batch from stdin, appended atomically after version 0.
  std::string batch =
      "{\"type\":\"RequestStatusChangedEvent\",\"data\":{\"request_id\":\"request-1\",\"old_status\":\"pending\",\"new_status\":\"in_progress\"}}\n"
      "{\"type\":\"RequestCompletedEvent\",\"data\":{\"request_id\":\"request-1\",\"machine_ids\":[\"m-1\",\"m-2\"]}}\n";
  CliRun b = Cli(S() + "--json publish --stream request-1 --expected-version 0", batch);
  ASSERT_EQ(0, b.code) << b.err;
  EXPECT_EQ(2, nlohmann::json::parse(b.out)["version"]);

  // Re-publishing the first event by id is recognised.
  CliRun again = Cli(S() + "--json publish --stream request-1 --type RequestCreatedEvent --expected-version no-stream "
                        "--event-id 3f2504e0-4f89-41d3-9a0c-0305e82c3301 --data '{\"request_id\":\"request-1\"}'");
  ASSERT_EQ(0, again.code) << again.err;
  EXPECT_EQ("already_appended", nlohmann::json::parse(again.out)["result"]);

  CliRun r = Cli(S() + "read --stream request-1");
  ASSERT_EQ(0, r.code) << r.err;
  ASSERT_EQ(3, Lines(r.out));
  auto first = nlohmann::json::parse(r.out.substr(0, r.out.find('\n')));
  for (const char* key : {"position", "stream", "version", "type", "event_id", "occurred_at", "data"}) {
    EXPECT_TRUE(first.contains(key)) << key;
  }
  EXPECT_EQ("RequestCreatedEvent", first["type"]);
  EXPECT_EQ("3f2504e0-4f89-41d3-9a0c-0305e82c3301", first["event_id"]);
  EXPECT_EQ("tpl", first["data"]["template_id"]);
  EXPECT_EQ(2, first["data"]["machine_count"]);

  EXPECT_EQ(1, Lines(Cli(S() + "read --last 1").out));
  EXPECT_EQ(3, Lines(Cli(S() + "read --since 2000-01-01T00:00:00Z").out));
  EXPECT_EQ(0, Lines(Cli(S() + "read --since 2200-01-01T00:00:00Z").out));
  std::string from1 = Cli(S() + "read --stream request-1 --from-version 1").out;
  uint64_t second_pos = nlohmann::json::parse(from1.substr(0, from1.find('\n')))["position"];
  EXPECT_EQ(2, Lines(Cli(S() + "read --from-position " + std::to_string(second_pos)).out));

  CliRun v = Cli(S() + "--json verify");
  ASSERT_EQ(0, v.code) << v.err;
  EXPECT_TRUE(nlohmann::json::parse(v.out)["ok"].get<bool>());
  EXPECT_EQ(3u, Events());
}

TEST_F(CliTest, BadInputGetsOneLineErrorAndWritesNothing) {
  ASSERT_EQ(0, Cli(S() + "publish --stream s-1 --type RequestCreatedEvent --data '{\"request_id\":\"r\"}'").code);
  struct Case {
    std::string args, stdin_text, needle;
  } cases[] = {
      {"publish --stream s-1 --type NoSuchEvent --data '{}'", "", "unknown event type 'NoSuchEvent'"},
      {"publish --stream s-1 --type RequestCreatedEvent --data '{\"nope\":1}'", "", "does not fit RequestCreatedEvent"},
      {"publish --stream s-1 --type RequestCreatedEvent --data '{\"machine_count\":\"many\"}'", "", "does not fit"},
      {"publish --stream s-1 --type RequestCreatedEvent --data 'not json'", "", "expected a JSON object"},
      {"publish --stream s-1 --type RequestCreatedEvent --expected-version seven --data '{}'", "", "--expected-version"},
      {"publish --stream s-1 --type RequestCreatedEvent --expected-version no-stream --data '{}'", "",
       "expected no stream, found version 0"},
      {"publish --stream s-1 --type RequestCreatedEvent --event-id not-a-uuid --data '{}'", "", "expected a UUID"},
      {"publish --stream s-1", "{\"type\":\"RequestCreatedEvent\",\"data\":{}}\n{\"type\":\"Bogus\"}\n",
       "stdin line 2: unknown event type"},
      {"read --since yesterday", "", "--since: expected an ISO 8601 time"},
      {"read --since 2999-01-01T00:00:00Z", "", "--since: expected an ISO 8601 time"},
      {"read --stream a --last 3", "", "choose one of"},
      // Bytes that are not UTF-8, and the store's own streams.
      {"publish --stream \"$(printf '\\377')\" --type RequestCreatedEvent --data '{\"request_id\":\"r\"}'", "",
       "--stream: stream name has invalid UTF-8 at byte 0 (0xff)"},
      {"publish --stream \"$(printf 'a\\001')\" --type RequestCreatedEvent --data '{}'", "", "a control character at byte 1"},
      {"stream-meta --stream \"$(printf '\\377')\" --max-count 3", "", "--stream: stream name has invalid UTF-8"},
      {"delete-stream --stream \"$(printf '\\376')\"", "", "--stream: stream name has invalid UTF-8"},
      {"read --stream \"$(printf '\\377')\"", "", "--stream: stream name has invalid UTF-8"},
      {"aggregate --stream \"$(printf '\\377')\"", "", "--stream: stream name has invalid UTF-8"},
      {"publish --stream '$meta-s-1' --type StreamMetadataEvent --data '{\"stream\":\"s-1\",\"max_count\":1}'", "",
       "begins with '$': such streams are the store's own"},
      {"handle --subscription x --stream-prefix \"$(printf '\\377')\" --handler count --max-events 1", "",
       "stream prefix has invalid UTF-8"},
  };
  for (const auto& c : cases) {
    CliRun r = Cli(S() + c.args, c.stdin_text);
    EXPECT_EQ(1, r.code) << c.args;
    EXPECT_EQ(1, Lines(r.err)) << c.args << ": " << r.err;
    EXPECT_NE(std::string::npos, r.err.find(c.needle)) << c.args << ": " << r.err;
    EXPECT_EQ(0u, r.err.find("hostfactory: ")) << r.err;
  }
  EXPECT_EQ(1u, Events());  // nothing was written by any of them
}

TEST_F(CliTest, NotAStoreForeignVersionAndLinksAreRefused) {
  // A directory holding something else is not turned into a store.
  std::string other = dir_.Sub("other");
  ::mkdir(other.c_str(), 0700);
  std::ofstream(other + "/notes.txt") << "hello";
  CliRun r = Cli("--store " + other + " publish --stream s --type RequestCreatedEvent --data '{}'");
  EXPECT_EQ(1, r.code);
  EXPECT_NE(std::string::npos, r.err.find("is not an hfevents store"));
  struct stat st;
  EXPECT_NE(0, ::stat((other + "/control.hfe").c_str(), &st));

  CliRun missing = Cli("--store " + dir_.Sub("missing") + " stats");
  EXPECT_EQ(1, missing.code);
  EXPECT_NE(std::string::npos, missing.err.find("no store at"));

  ASSERT_EQ(0, Cli(S() + "publish --stream s --type RequestCreatedEvent --data '{}'").code);
  ASSERT_EQ(0, ::symlink(dir_.Sub("store").c_str(), dir_.Sub("link").c_str()));
  CliRun link = Cli("--store " + dir_.Sub("link") + " stats");
  EXPECT_EQ(1, link.code);
  EXPECT_NE(std::string::npos, link.err.find("symbolic link"));

  {
    std::fstream f(dir_.Sub("store") + "/control.hfe", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(8);
    uint32_t v = 99;
    f.write(reinterpret_cast<const char*>(&v), 4);
  }
  CliRun other_version = Cli(S() + "stats");
  EXPECT_EQ(1, other_version.code);
  EXPECT_EQ(1, Lines(other_version.err));
  EXPECT_NE(std::string::npos, other_version.err.find("layout version 99"));
}

TEST_F(CliTest, VerifyExitsNonZeroOnDamage) {
  ASSERT_EQ(0, Cli(S() + "publish --stream s --type RequestCreatedEvent --data '{\"request_id\":\"abcdef\"}'").code);
  {
    std::fstream f(dir_.Sub("store") + "/segments/0000000000000000.log", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(64 + 32 + 16 + 1);  // segment header, frame header, stream entry: a byte of the stream name
    f.put('!');
  }
  CliRun v = Cli(S() + "verify");
  EXPECT_EQ(1, v.code);
  EXPECT_NE(std::string::npos, v.out.find("DAMAGED"));
  EXPECT_NE(std::string::npos, v.out.find("CRC mismatch"));
}

TEST_F(CliTest, SimulateDrivesLifecyclesFromSeveralProcesses) {
  CliRun r = Cli(S() + "--json simulate --producers 3 --requests 50");
  ASSERT_EQ(0, r.code) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(150, j["requests_completed"].get<int>() + j["requests_failed"].get<int>());
  EXPECT_EQ(j["events_appended"], j["store_events"]);
  EXPECT_EQ(0, Cli(S() + "verify").code);
}

TEST_F(CliTest, DemoRunsThePipelineToTheEndAndRefusesBadInput) {
  const std::string out = dir_.Sub("out");
  CliRun r = Cli(S() + "--json demo --out " + out + " --producers 2 --requests 40 --rate 0 --fail-rate 0.2");
  ASSERT_EQ(0, r.code) << r.err;
  auto j = nlohmann::json::parse(r.out);
  uint64_t ended = 0;
  for (const auto& [status, n] : j["requests"].items()) {
    EXPECT_NE("pending", status);
    EXPECT_NE("in_progress", status);
    ended += n.get<uint64_t>();
  }
  EXPECT_EQ(80u, ended);
  EXPECT_EQ(j["events"].get<uint64_t>(), Events());
  EXPECT_EQ(j["events"].get<uint64_t>(), j["handlers"]["dispatched"].get<uint64_t>());
  EXPECT_EQ(0, j["provider"]["rejected"].get<int>());
  std::ifstream audit(out + "/audit.jsonl");
  EXPECT_EQ(j["events"].get<int>(), static_cast<int>(std::count(std::istreambuf_iterator<char>(audit),
                                                                std::istreambuf_iterator<char>(), '\n')));
  // A new store must not meet another store's outputs; options out of range; a second provider.
  struct Case {
    std::string args, needle;
  } cases[] = {
      {"--store " + dir_.Sub("other") + " demo --out " + out, "from another store"},
      {"demo --out " + out + " --producers 0", "--producers must be 1..32"},
      {"provider --fail-rate 2", "--fail-rate: expected 0..1"},
      {"provider --min-delay-ms 5 --max-delay-ms 1", "expected 0 <= min <= max"},
  };
  for (const auto& c : cases) {
    CliRun bad = Cli((c.args.rfind("--store", 0) == 0 ? "" : S()) + c.args);
    EXPECT_NE(0, bad.code) << c.args;
    EXPECT_EQ(1, Lines(bad.err)) << c.args << ": " << bad.err;
    EXPECT_NE(std::string::npos, bad.err.find(c.needle)) << c.args << ": " << bad.err;
  }
  EXPECT_FALSE(std::filesystem::exists(dir_.Sub("other")));
}

TEST_F(CliTest, CompactAggregateAndReplay) {
  ASSERT_EQ(0, Cli(S() + "simulate --producers 1 --requests 20 --fail-rate 0").code);
  CliRun c = Cli(S() + "--json compact");
  ASSERT_EQ(0, c.code) << c.err;
  auto cj = nlohmann::json::parse(c.out);
  EXPECT_TRUE(cj["written"].get<bool>());
  EXPECT_EQ(Events(), cj["events"].get<uint64_t>());
  EXPECT_EQ(20u, cj["requests"].get<uint64_t>());
  EXPECT_FALSE(nlohmann::json::parse(Cli(S() + "--json compact").out)["written"].get<bool>());
  // A request's state from the snapshot plus its tail equals the one from the log.
  const std::string recent = Cli(S() + "read --last 200").out;
  const auto at = recent.find("\"stream\":\"request-");
  ASSERT_NE(std::string::npos, at);
  const std::string request = recent.substr(at + 10, recent.find('"', at + 10) - at - 10);
  auto fast = nlohmann::json::parse(Cli(S() + "--json aggregate --stream " + request).out);
  auto slow = nlohmann::json::parse(Cli(S() + "--json aggregate --stream " + request + " --no-snapshot").out);
  EXPECT_NE(std::string::npos, fast["rebuilt_from"].get<std::string>().find("snapshot at position"));
  EXPECT_EQ("complete", fast["outward_status"]);
  for (auto* j : {&fast, &slow}) {
    j->erase("rebuilt_from");
    j->erase("rebuild_us");
  }
  EXPECT_EQ(slow, fast);
  CliRun r = Cli(S() + "--json replay --from beginning --type RequestCreatedEvent,RequestCompletedEvent --handler count");
  ASSERT_EQ(0, r.code) << r.err;
  auto rj = nlohmann::json::parse(r.out);
  EXPECT_EQ(40u, rj["events_replayed"].get<uint64_t>());
  EXPECT_EQ(40u, rj["handlers"][0]["succeeded"].get<uint64_t>());
  struct Case {
    std::string args, needle;
  } cases[] = {
      {"aggregate --stream nope", "no stream \"nope\""},
      {"compact --keep 0", "must be positive"},
      {"replay --from yesterday --handler count", "--from: expected an ISO 8601 time"},
      {"replay --from 2026-11-27T10:00:00Z --to 2026-11-27T09:00:00Z --handler count", "--to is before --from"},
      {"replay --from beginning --handler nope", "unknown handler 'nope'"},
  };
  for (const auto& cs : cases) {
    CliRun bad = Cli(S() + cs.args);
    EXPECT_NE(0, bad.code) << cs.args;
    EXPECT_EQ(1, Lines(bad.err)) << cs.args << ": " << bad.err;
    EXPECT_NE(std::string::npos, bad.err.find(cs.needle)) << cs.args << ": " << bad.err;
  }
}

TEST_F(CliTest, RedactKeepsThePositionAndHidesTheBody) {
  ASSERT_EQ(0, Cli(S() + "publish --stream request-9 --type RequestCreatedEvent --data '{\"request_id\":\"request-9\",\"template_id\":\"secret\"}'").code);
  auto before = nlohmann::json::parse(Cli(S() + "--json read --stream request-9").out);
  const uint64_t pos = before["position"].get<uint64_t>();
  CliRun r = Cli(S() + "--json redact --position " + std::to_string(pos));
  ASSERT_EQ(0, r.code) << r.err;
  EXPECT_FALSE(nlohmann::json::parse(r.out)["already_redacted"].get<bool>());
  auto after = nlohmann::json::parse(Cli(S() + "--json read --stream request-9").out);
  EXPECT_EQ(pos, after["position"].get<uint64_t>());
  EXPECT_TRUE(after["redacted"].get<bool>());
  EXPECT_TRUE(after["data"].is_null());
  EXPECT_EQ(0, Cli(S() + "verify").code);
  CliRun bad = Cli(S() + "redact --position 7");
  EXPECT_NE(0, bad.code);
  EXPECT_EQ(1, Lines(bad.err)) << bad.err;
  EXPECT_NE(std::string::npos, bad.err.find("no event starts at position 7")) << bad.err;
}

TEST_F(CliTest, StreamMetaAndDeleteStream) {
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(0, Cli(S() + "publish --stream order-1 --type RequestCreatedEvent --data '{}'").code);
  }
  auto m = nlohmann::json::parse(Cli(S() + "--json stream-meta --stream order-1 --max-count 1 --max-age 12h").out);
  EXPECT_EQ(1u, m["max_count"].get<uint64_t>());
  EXPECT_EQ(43200.0, m["max_age_seconds"].get<double>());
  EXPECT_EQ(1, Lines(Cli(S() + "read --stream order-1").out));
  ASSERT_EQ(0, Cli(S() + "delete-stream --stream order-1 --hard").code);
  EXPECT_EQ(0, Lines(Cli(S() + "read --stream order-1").out));
  struct Case {
    std::string args, needle;
  } cases[] = {
      {"publish --stream order-1 --type RequestCreatedEvent --data '{}'", "deleted for good"},
      {"stream-meta --stream order-2 --max-age soon", "--max-age: expected a duration"},
      {"stream-meta --stream '$parked-x' --max-count 1", "is a system stream"},
      {"delete-stream --stream nowhere", "no stream \"nowhere\" to delete"},
  };
  for (const auto& c : cases) {
    CliRun bad = Cli(S() + c.args);
    EXPECT_NE(0, bad.code) << c.args;
    EXPECT_EQ(1, Lines(bad.err)) << c.args << ": " << bad.err;
    EXPECT_NE(std::string::npos, bad.err.find(c.needle)) << c.args << ": " << bad.err;
  }
}

TEST_F(CliTest, HandleResumesAfterItsAcksAndSubscriptionsShowsLag) {
  ASSERT_EQ(0, Cli(S() + "simulate --producers 2 --requests 10").code);
  uint64_t total = Events();
  // First run: the first 5 created-requests, then it exits (acked).
  CliRun first = Cli(S() + "handle --subscription audit --types RequestCreatedEvent --handler print --max-events 5");
  ASSERT_EQ(0, first.code) << first.err;
  EXPECT_EQ(5, Lines(first.out));
  CliRun second = Cli(S() + "handle --subscription audit --types RequestCreatedEvent --handler print,count --idle-exit-ms 100");
  ASSERT_EQ(0, second.code) << second.err;
  EXPECT_EQ(15, Lines(second.out));  // 20 requests in all; the first 5 are not delivered again
  EXPECT_NE(std::string::npos, second.err.find("RequestCreatedEvent=15"));
  for (size_t at = 0; at < second.out.size();) {
    size_t nl = second.out.find('\n', at);
    EXPECT_EQ("RequestCreatedEvent", nlohmann::json::parse(second.out.substr(at, nl - at))["type"]);
    at = nl + 1;
  }
  ASSERT_EQ(0, Cli(S() + "handle --subscription lagging --from end --handler count --idle-exit-ms 50").code);
  ASSERT_EQ(0, Cli(S() + "simulate --producers 1 --requests 3").code);
  CliRun list = Cli(S() + "--json subscriptions");
  ASSERT_EQ(0, list.code) << list.err;
  auto j = nlohmann::json::parse(list.out);
  ASSERT_EQ(2u, j.size());
  EXPECT_EQ("audit", j[0]["name"]);
  EXPECT_EQ(20u, j[0]["acked"].get<uint64_t>());
  EXPECT_GT(j[1]["lag_bytes"].get<uint64_t>(), 0u);  // events arrived after "lagging" last read
  EXPECT_EQ(0, j[1]["members"]);
  EXPECT_GT(Events(), total);
  CliRun bad = Cli(S() + "handle --subscription x --types NotAType --handler print");
  EXPECT_EQ(1, bad.code);
  EXPECT_NE(std::string::npos, bad.err.find("unknown event type 'NotAType'"));
}

TEST_F(CliTest, TwoGroupMembersShareTheWorkWithoutLossOrDisorder) {
  ASSERT_EQ(0, Cli(S() + "simulate --producers 2 --requests 100").code);
  uint64_t total = Events();
  std::string out1 = dir_.Sub("m1.jsonl"), out2 = dir_.Sub("m2.jsonl");
  std::string member = std::string(HFE_CLI_PATH) + " " + S() +
                       "handle --subscription audit --group workers --handler print --idle-exit-ms 1500";
  std::string both = "(" + member + " > " + out1 + " 2>/dev/null & " + member + " > " + out2 + " 2>/dev/null & wait)";
  ASSERT_EQ(0, std::system(both.c_str()));
  std::set<std::string> ids;
  size_t lines = 0;
  for (const auto& f : {out1, out2}) {
    std::ifstream in(f);
    std::map<std::string, int64_t> last;
    for (std::string line; std::getline(in, line);) {
      auto j = nlohmann::json::parse(line);
      ids.insert(j["event_id"].get<std::string>());
      ++lines;
      auto& v = last.try_emplace(j["stream"].get<std::string>(), -1).first->second;
      EXPECT_GT(j["version"].get<int64_t>(), v) << "stream " << j["stream"] << " out of order in " << f;
      v = j["version"].get<int64_t>();
    }
  }
  EXPECT_EQ(total, ids.size());  // every event handled by one of the members
  EXPECT_EQ(total, lines);       // and by one only
  auto list = nlohmann::json::parse(Cli(S() + "--json subscriptions").out);
  ASSERT_EQ(1u, list.size());
  EXPECT_EQ("audit@workers", list[0]["name"]);
  EXPECT_EQ("group", list[0]["kind"]);
  EXPECT_EQ(0u, list[0]["lag_bytes"].get<uint64_t>());
  CliRun parked = Cli(S() + "parked --subscription audit --group workers");
  EXPECT_EQ(0, parked.code) << parked.err;
  EXPECT_EQ(0, Lines(parked.out));
}

TEST_F(CliTest, DebugEventsTroubleshooting) {
  ASSERT_EQ(0, Cli(S() + "simulate --producers 1 --requests 5").code);
  auto handlers = nlohmann::json::parse(Cli(S() + "--json debug-events --show-handlers").out);
  EXPECT_EQ(7u, handlers.size());
  auto mappings = nlohmann::json::parse(Cli(S() + "--json debug-events --show-handler-mappings").out);
  EXPECT_EQ((std::vector<std::string>{"print", "count", "audit", "notification", "metrics", "performance",
                                      "request-workflow"}),
            mappings["RequestCreatedEvent"].get<std::vector<std::string>>());
  EXPECT_EQ((std::vector<std::string>{"print", "count", "audit", "notification", "metrics", "performance",
                                      "machine-workflow"}),
            mappings["MachineCreatedEvent"].get<std::vector<std::string>>());
  EXPECT_EQ(6u, mappings["TemplateCreatedEvent"].size());
  auto health = nlohmann::json::parse(Cli(S() + "--json debug-events --store-health").out);
  EXPECT_TRUE(health["healthy"].get<bool>());
  EXPECT_EQ(Events(), health["events"].get<uint64_t>());
  EXPECT_EQ(3, Lines(Cli(S() + "debug-events --list-recent-events --count 3").out));
  auto probe = nlohmann::json::parse(Cli(S() + "--json debug-events --test-store").out);
  EXPECT_TRUE(probe["ok"].get<bool>());
  CliRun none = Cli(S() + "debug-events");
  EXPECT_EQ(1, none.code);
  EXPECT_NE(std::string::npos, none.err.find("choose one of"));
}

// The shape users script against: one JSON object, a machine object, and results with the names, keys and
// baselines the suite promises. (Figures are checked for presence and sign, never for speed.)
TEST_F(CliTest, BenchQuickJsonHasEveryResult) {
  CliRun r = Cli("--json bench --quick --rounds 1 --no-plots --out " + dir_.Sub("bench"));
  ASSERT_EQ(0, r.code) << r.err;
  auto j = nlohmann::json::parse(r.out);
  for (const char* key : {"cpu", "cores", "kernel", "governor"}) EXPECT_TRUE(j["machine"].contains(key)) << key;
  std::map<std::string, nlohmann::json> by;
  for (const auto& res : j["results"]) by[res["name"].get<std::string>()] = res;
  for (const char* name : {"rtt_128", "oneway_128", "rtt_128_park", "oneway_128_park"}) {
    ASSERT_TRUE(by.count(name)) << name;
    const auto& res = by[name];
    for (const char* k : {"p50", "p90", "p99", "p999", "p9999", "max"}) {
      EXPECT_GT(res[k].get<double>(), 0) << name << " " << k;
      EXPECT_EQ(res[k], res["pipeline"][k]);
    }
    EXPECT_LE(res["p50"].get<double>(), res["max"].get<double>());
  }
  for (const char* b : {"pingpong", "pipe", "unix_socketpair", "boost_message_queue", "moodycamel_threads"}) {
    EXPECT_TRUE(by["rtt_128"]["baselines"].contains(b)) << b;
    EXPECT_GT(by["rtt_128"]["baselines"][b]["p50"].get<double>(), 0) << b;
  }
  for (const char* name : {"throughput_1p1c_128", "throughput_2p1c_128", "throughput_1p3c_group_128",
                           "append_full_semantics", "encode_append_128", "replay"}) {
    ASSERT_TRUE(by.count(name)) << name;
    EXPECT_GT(by[name]["events_per_s"].get<double>(), 0) << name;
    EXPECT_GT(by[name]["baselines"]["memcpy"]["events_per_s"].get<double>(), 0) << name;
  }
  std::ifstream saved(dir_.Sub("bench") + "/results.json");
  EXPECT_TRUE(saved.good());
  std::ifstream hgrm(dir_.Sub("bench") + "/rtt_128_pipeline.hgrm");
  std::string header;
  ASSERT_TRUE(std::getline(hgrm, header));
  EXPECT_NE(std::string::npos, header.find("Percentile"));
}

}  // namespace
