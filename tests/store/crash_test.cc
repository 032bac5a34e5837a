// Crash safety: producers are SIGKILLed at random moments while appending (and some kill themselves at
// named points of the append and resolve paths), well over 100 kills in all; every round mixes producers
// that await each append with pipelined ones (AppendAsync, up to 8 batches in flight). Invariants checked after every
// round: the store opens, verify passes (no torn or damaged frame is readable, versions gap-free, tables match
// the log), every append that returned success is present, and the surviving producers were never blocked
// longer than the unblock timeout (plus scheduling slack; an unbounded wait would hang the run instead).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <random>
#include <set>

#include "ipc/clock.h"
#include "store/internal/fault.h"
#include "tests/store/store_testutil.h"

namespace hfe::store {
namespace {

struct Ack {
  uint64_t hi, lo;
};

std::atomic<uint32_t> g_self_kill_odds{0};
uint32_t g_rng_state = 1;
void MaybeDie(internal::FaultPoint) {
  g_rng_state = g_rng_state * 1103515245u + 12345u;
  uint32_t odds = g_self_kill_odds.load(std::memory_order_relaxed);
  if (odds != 0 && (g_rng_state >> 8) % odds == 0) ::raise(SIGKILL);
}

constexpr int64_t kUnblockMs = 200;
constexpr int64_t kSlackMs = 3000;

// A pipelined producer (AppendAsync) keeps up to 8 batches in flight and acknowledges a batch only once
// Await returned its verdict; a kill leaves committed, undecided frames for the others or recovery.
int Producer(const std::string& store_dir, const std::string& ack_file, int id, std::atomic<int>* stop,
             bool self_kill, bool pipelined) {
  auto o = testing::SmallStore();
  o.unblock_timeout_ms = kUnblockMs;
  auto s = EventStore::Open(store_dir, o);
  if (!s.ok()) return 1;
  int fd = ::open(ack_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  if (fd < 0) return 2;
  if (self_kill) {
    g_rng_state = static_cast<uint32_t>(::getpid());
    g_self_kill_odds.store(300);
    internal::g_fault_hook.store(&MaybeDie);
  }
  std::mt19937 rng(static_cast<uint32_t>(::getpid()));
  int64_t max_wait = 0;
  struct InFlight {
    AppendTicket ticket;
    std::vector<testing::TestEvent> events;
  };
  std::vector<InFlight> in_flight;
  auto collect = [&](InFlight& f) {
    int64_t t0 = clock::MonotonicNanos();
    auto r = (*s)->Await(f.ticket);
    max_wait = std::max(max_wait, clock::MonotonicNanos() - t0);
    if (r.ok()) {
      for (const auto& e : f.events) {
        Ack a{e.data.id.hi, e.data.id.lo};
        if (::write(fd, &a, sizeof a) != sizeof a) return 3;
      }
    } else if (r.status().code() != StatusCode::kWrongExpectedVersion) {
      return 4;
    }
    return 0;
  };
  while (pipelined && stop->load(std::memory_order_relaxed) == 0) {
    std::string stream = "request-" + std::to_string(rng() % 50);
    InFlight f;
    const int n = 1 + static_cast<int>(rng() % 3);
    for (int i = 0; i < n; ++i) f.events.emplace_back("q" + std::to_string(id) + std::string(rng() % 300, 'y'));
    auto d = testing::Data(f.events);
    StreamInfo info = (*s)->GetStream(stream);
    ExpectedVersion ev = rng() % 2 ? ExpectedVersion::Any()
                         : info.next_version == 0 ? ExpectedVersion::NoStream()
                                                  : ExpectedVersion::Exact(info.next_version - 1);
    auto t = (*s)->AppendAsync(stream, ev, d);
    if (!t.ok()) return 5;
    f.ticket = *t;
    in_flight.push_back(std::move(f));
    if (in_flight.size() == 8) {
      if (int rc = collect(in_flight.front()); rc != 0) return rc;
      in_flight.erase(in_flight.begin());
    }
  }
  for (auto& f : in_flight) {
    if (int rc = collect(f); rc != 0) return rc;
  }
  while (!pipelined && stop->load(std::memory_order_relaxed) == 0) {
    std::string stream = "request-" + std::to_string(rng() % 50);
    int n = 1 + static_cast<int>(rng() % 3);
    std::vector<testing::TestEvent> evs;
    for (int i = 0; i < n; ++i) evs.emplace_back("p" + std::to_string(id) + std::string(rng() % 300, 'x'));
    auto d = testing::Data(evs);
    StreamInfo info = (*s)->GetStream(stream);
    ExpectedVersion ev = rng() % 2 ? ExpectedVersion::Any()
                         : info.next_version == 0 ? ExpectedVersion::NoStream()
                                                  : ExpectedVersion::Exact(info.next_version - 1);
    int64_t t0 = clock::MonotonicNanos();
    auto r = (*s)->Append(stream, ev, d);
    max_wait = std::max(max_wait, clock::MonotonicNanos() - t0);
    if (r.ok()) {
      for (const auto& e : d) {
        Ack a{e.id.hi, e.id.lo};
        if (::write(fd, &a, sizeof a) != sizeof a) return 3;
      }
    } else if (r.status().code() != StatusCode::kWrongExpectedVersion) {
      return 4;
    }
  }
  internal::g_fault_hook.store(nullptr);
  // Survivors report how long their longest append took.
  Ack done{~0ull, static_cast<uint64_t>(max_wait)};
  if (::write(fd, &done, sizeof done) != sizeof done) return 3;
  ::close(fd);
  return 0;
}

TEST(CrashTest, RandomKillsNeverLoseAcknowledgedAppends) {
  hfe::testing::TempDir dir;
  const std::string store_dir = dir.Sub("store");
  auto o = testing::SmallStore();
  o.unblock_timeout_ms = kUnblockMs;
  { ASSERT_TRUE(EventStore::Open(store_dir, o).ok()); }
  auto* stop = static_cast<std::atomic<int>*>(
      ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(MAP_FAILED, static_cast<void*>(stop));
  std::mt19937 rng(42);
  int kills = 0, rounds = 0;
  int64_t longest_wait = 0;
  std::set<std::pair<uint64_t, uint64_t>> acked;
  while (kills < 110) {
    ++rounds;
    stop->store(0);
    hfe::testing::Children kids;
    std::vector<pid_t> pids;
    std::vector<std::string> acks;
    for (int p = 0; p < 3; ++p) {
      acks.push_back(dir.Sub("acks-" + std::to_string(rounds) + "-" + std::to_string(p)));
      bool self_kill = p == 2;
      std::string f = acks.back();
      const bool pipelined = (rounds + p) % 2 == 0;  // every round mixes the two kinds of producer
      pids.push_back(
          kids.Spawn([&, p, self_kill, f, pipelined] { return Producer(store_dir, f, p, stop, self_kill, pipelined); }));
    }
    ::usleep(static_cast<useconds_t>(2000 + rng() % 15000));
    kids.Kill(pids[0]);
    EXPECT_EQ(128 + SIGKILL, kids.Wait(pids[0]));
    ++kills;
    ::usleep(static_cast<useconds_t>(rng() % 5000));  // survivors keep appending past the dead writer
    stop->store(1);
    for (int p = 1; p < 3; ++p) {
      int rc = kids.Wait(pids[p]);
      if (rc == 128 + SIGKILL) {
        ++kills;  // a self-kill at a fault point
      } else {
        ASSERT_EQ(0, rc) << "producer " << p << " failed in round " << rounds;
      }
    }
    // Read what each producer acknowledged (a kill may cut the last record short: ignore a partial one).
    for (const auto& f : acks) {
      int fd = ::open(f.c_str(), O_RDONLY);
      if (fd < 0) continue;
      Ack a;
      while (::read(fd, &a, sizeof a) == sizeof a) {
        if (a.hi == ~0ull) longest_wait = std::max<int64_t>(longest_wait, static_cast<int64_t>(a.lo));
        else acked.insert({a.hi, a.lo});
      }
      ::close(fd);
      ::unlink(f.c_str());
    }
    // After every round: the store opens (alone, so it recovers), verifies, and holds every ack.
    auto s = EventStore::Open(store_dir, o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    auto rep = (*s)->Verify();
    ASSERT_TRUE(rep.ok());
    ASSERT_TRUE(rep->ok()) << "round " << rounds << ": " << rep->problems[0];
    std::set<std::pair<uint64_t, uint64_t>> present;
    ASSERT_TRUE((*s)->ReadAll(0, [&](const EventView& v) {
      present.insert({v.id.hi, v.id.lo});
      return true;
    }).ok());
    for (const auto& id : acked) ASSERT_TRUE(present.count(id)) << "acknowledged event lost in round " << rounds;
    EXPECT_EQ(present.size(), rep->events);  // ids are unique: no event was applied twice
  }
  EXPECT_GE(kills, 100);
  EXPECT_LT(longest_wait, (kUnblockMs + kSlackMs) * 1'000'000) << "a survivor was blocked for " << longest_wait << " ns";
  RecordProperty("kills", kills);
  RecordProperty("rounds", rounds);
  RecordProperty("acknowledged", static_cast<int>(acked.size()));
  ::munmap(stop, 4096);
}

}  // namespace
}  // namespace hfe::store
