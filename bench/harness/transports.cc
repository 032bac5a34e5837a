// The transports of transports.h. Every one runs the same loop shape, so their figures compare.
#include "bench/harness/transports.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/interprocess/ipc/message_queue.hpp>
#include <concurrentqueue/concurrentqueue.h>
#include <cstring>
#include <filesystem>
#include <functional>
#include <thread>

#include "ipc/clock.h"
#include "store/event_store.h"
#include "store/subscription.h"

namespace hfe::bench {

using clock::MonotonicNanos;

void Pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu % std::max(1, static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN))), &set);
  sched_setaffinity(0, sizeof set, &set);
}

void Unpin() {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c = 0; c < std::max(1, static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN))); ++c) CPU_SET(c, &set);
  sched_setaffinity(0, sizeof set, &set);
}

const char* TransportName(Transport t) {
  switch (t) {
    case Transport::kCacheLine: return "pingpong";
    case Transport::kPipe: return "pipe";
    case Transport::kSocketPair: return "unix_socketpair";
    case Transport::kBoostMq: return "boost_message_queue";
    case Transport::kMoodycamelThreads: return "moodycamel_threads";
    case Transport::kPipelineSpin: return "hfevents";
    case Transport::kPipelinePark: return "hfevents_park";
  }
  return "?";
}

namespace {

constexpr int kWarmup = 1000;

// Shared between A and B: B's one-way samples.
struct SharedSamples {
  int64_t* data;
  size_t n;
  explicit SharedSamples(size_t count) : n(count) {
    data = static_cast<int64_t*>(
        ::mmap(nullptr, sizeof(int64_t) * n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0));
  }
  ~SharedSamples() { ::munmap(data, sizeof(int64_t) * n); }
};

// The A side's loop: `send(buf)` then `recv(buf)`; with a rate, paced from a schedule.
std::vector<int64_t> RunA(int total, size_t size, double rate, const std::function<void(uint8_t*)>& send,
                          const std::function<void(uint8_t*)>& recv) {
  std::vector<uint8_t> buf(std::max<size_t>(size, 16), 0x5a);
  std::vector<int64_t> rtt;
  rtt.reserve(static_cast<size_t>(total));
  const int64_t period = rate > 0 ? static_cast<int64_t>(1e9 / rate) : 0;
  int64_t start = MonotonicNanos();
  for (int i = 0; i < total + kWarmup; ++i) {
    int64_t intended = MonotonicNanos();
    if (period) {
      intended = start + static_cast<int64_t>(i) * period;
      while (MonotonicNanos() < intended) {
      }
    }
    std::memcpy(buf.data(), &intended, 8);
    send(buf.data());
    recv(buf.data());
    if (i >= kWarmup) rtt.push_back(MonotonicNanos() - intended);
  }
  return rtt;
}

// Runs B in a child process pinned to CPU 1; `b(samples)` records one-way latencies.
RoundTrip Fork(int total, size_t size, double rate, const std::function<void(int64_t*)>& b,
               const std::function<void(uint8_t*)>& send, const std::function<void(uint8_t*)>& recv) {
  SharedSamples shared(static_cast<size_t>(total + kWarmup));
  pid_t child = ::fork();
  if (child == 0) {
    Pin(1);
    b(shared.data);
    ::_exit(0);
  }
  Pin(0);
  RoundTrip r;
  r.rtt = RunA(total, size, rate, send, recv);
  ::waitpid(child, nullptr, 0);
  r.oneway.assign(shared.data + kWarmup, shared.data + kWarmup + total);
  return r;
}

int64_t Stamp(const uint8_t* buf) {
  int64_t t;
  std::memcpy(&t, buf, 8);
  return t;
}

void ReadFull(int fd, uint8_t* buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t k = ::read(fd, buf + got, n - got);
    if (k <= 0) return;
    got += static_cast<size_t>(k);
  }
}
void WriteFull(int fd, const uint8_t* buf, size_t n) {
  size_t put = 0;
  while (put < n) {
    ssize_t k = ::write(fd, buf + put, n - put);
    if (k <= 0) return;
    put += static_cast<size_t>(k);
  }
}

RoundTrip CacheLine(int total, double rate) {
  auto* lines = static_cast<std::atomic<int64_t>*>(
      ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0));
  std::atomic<int64_t>& ping = lines[0];
  std::atomic<int64_t>& pong = lines[16];  // 128 bytes apart
  auto r = Fork(
      total, 8, rate,
      [&](int64_t* samples) {
        for (int i = 0; i < total + kWarmup; ++i) {
          int64_t s;
          while ((s = ping.load(std::memory_order_acquire)) == 0) {
          }
          samples[i] = MonotonicNanos() - s;
          ping.store(0, std::memory_order_relaxed);
          pong.store(s, std::memory_order_release);
        }
      },
      [&](uint8_t* buf) { ping.store(Stamp(buf), std::memory_order_release); },
      [&](uint8_t*) {
        while (pong.exchange(0, std::memory_order_acquire) == 0) {
        }
      });
  ::munmap(lines, 4096);
  return r;
}

RoundTrip PipeLike(int total, size_t size, double rate, bool socketpair) {
  int ab[2], ba[2];
  if (socketpair) {
    ::socketpair(AF_UNIX, SOCK_STREAM, 0, ab);
    ba[0] = ab[0];
    ba[1] = ab[1];
  } else {
    if (::pipe(ab) != 0 || ::pipe(ba) != 0) return {};
  }
  // socketpair: A uses ab[0], B uses ab[1]; pipes: A writes ab[1], reads ba[0]; B reads ab[0], writes ba[1].
  int a_write = socketpair ? ab[0] : ab[1], a_read = socketpair ? ab[0] : ba[0];
  int b_read = socketpair ? ab[1] : ab[0], b_write = socketpair ? ab[1] : ba[1];
  auto r = Fork(
      total, size, rate,
      [&](int64_t* samples) {
        std::vector<uint8_t> buf(size);
        for (int i = 0; i < total + kWarmup; ++i) {
          ReadFull(b_read, buf.data(), size);
          samples[i] = MonotonicNanos() - Stamp(buf.data());
          WriteFull(b_write, buf.data(), size);
        }
      },
      [&](uint8_t* buf) { WriteFull(a_write, buf, size); }, [&](uint8_t* buf) { ReadFull(a_read, buf, size); });
  ::close(ab[0]);
  ::close(ab[1]);
  if (!socketpair) {
    ::close(ba[0]);
    ::close(ba[1]);
  }
  return r;
}

RoundTrip BoostMq(int total, size_t size, double rate) {
  namespace bip = boost::interprocess;
  std::string ping = "hfe-bench-ping-" + std::to_string(::getpid());
  std::string pong = "hfe-bench-pong-" + std::to_string(::getpid());
  bip::message_queue::remove(ping.c_str());
  bip::message_queue::remove(pong.c_str());
  RoundTrip r;
  {
    bip::message_queue qa(bip::create_only, ping.c_str(), 16, size);
    bip::message_queue qb(bip::create_only, pong.c_str(), 16, size);
    r = Fork(
        total, size, rate,
        [&](int64_t* samples) {
          bip::message_queue in(bip::open_only, ping.c_str());
          bip::message_queue out(bip::open_only, pong.c_str());
          std::vector<uint8_t> buf(size);
          size_t got;
          unsigned prio;
          for (int i = 0; i < total + kWarmup; ++i) {
            in.receive(buf.data(), size, got, prio);
            samples[i] = MonotonicNanos() - Stamp(buf.data());
            out.send(buf.data(), size, 0);
          }
        },
        [&](uint8_t* buf) { qa.send(buf, size, 0); },
        [&](uint8_t* buf) {
          size_t got;
          unsigned prio;
          qb.receive(buf, size, got, prio);
        });
  }
  bip::message_queue::remove(ping.c_str());
  bip::message_queue::remove(pong.c_str());
  return r;
}

RoundTrip Moodycamel(int total, size_t size, double rate) {
  // In-process reference: two threads, a queue each way, 128-byte messages by value.
  struct Msg {
    uint8_t bytes[128];
  };
  moodycamel::ConcurrentQueue<Msg> to_b(64), to_a(64);
  std::vector<int64_t> samples(static_cast<size_t>(total + kWarmup));
  std::thread b([&] {
    Pin(1);
    Msg m;
    for (int i = 0; i < total + kWarmup; ++i) {
      while (!to_b.try_dequeue(m)) {
      }
      samples[static_cast<size_t>(i)] = MonotonicNanos() - Stamp(m.bytes);
      to_a.enqueue(m);
    }
  });
  Pin(0);
  RoundTrip r;
  Msg m{};
  r.rtt = RunA(total, std::min<size_t>(size, 128), rate, [&](uint8_t* buf) {
    std::memcpy(m.bytes, buf, 16);
    to_b.enqueue(m);
  }, [&](uint8_t*) {
    while (!to_a.try_dequeue(m)) {
    }
  });
  b.join();
  Pin(0);
  r.oneway.assign(samples.begin() + kWarmup, samples.end());
  return r;
}

RoundTrip Pipeline(int total, size_t size, double rate, store::WaitStrategy wait) {
  char tmpl[] = "/dev/shm/hfe-bench-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  std::string path = dir + "/store";
  store::StoreOptions o;
  o.create_if_missing = true;
  o.segment_size = 64ull << 20;
  o.stream_capacity = 1024;
  o.dedup_window = 1u << 20;
  RoundTrip r;
  {
    auto s = store::EventStore::Open(path, o);
    if (!s.ok()) return r;
  }
  auto event = [&](const uint8_t* payload, uint64_t n) {
    store::EventData e;
    e.id = store::EventId{0x77 + (n >> 40), n};
    e.type = 1;
    e.payload = {payload, size};
    return e;
  };
  std::unique_ptr<store::EventStore> a_store;
  std::unique_ptr<store::Subscription> a_sub;
  uint64_t a_seq = 0;
  store::EventStore::Visitor got = [](const store::EventView&) { return true; };
  r = Fork(
      total, size, rate,
      [&](int64_t* samples) {
        auto s = store::EventStore::Open(path, o);
        store::SubscriptionOptions so;
        so.stream_prefix = "ping";
        so.wait = wait;
        auto sub = store::Subscription::Open(**s, "b", so);
        if (!s.ok() || !sub.ok()) return;
        std::vector<uint8_t> echo(size);
        int n = 0;
        store::EventStore::Visitor reply = [&](const store::EventView& e) {
          samples[n] = MonotonicNanos() - Stamp(e.payload.data());
          std::memcpy(echo.data(), e.payload.data(), size);
          store::EventData d = event(echo.data(), (1ull << 40) + static_cast<uint64_t>(n));
          (void)(*s)->Append("pong", store::ExpectedVersion::Any(), {&d, 1});
          ++n;
          return true;
        };
        while (n < total + kWarmup) {
          auto k = (*sub)->Poll(reply, 16);
          if (k.ok() && *k == 0) (*sub)->Wait(1'000'000'000);
          (*sub)->AckDelivered();
        }
      },
      [&](uint8_t* buf) {
        if (!a_store) {
          auto opened = store::EventStore::Open(path, o);
          if (!opened.ok()) std::abort();
          a_store = std::move(*opened);
          store::SubscriptionOptions so;
          so.stream_prefix = "pong";
          so.wait = wait;
          auto sub = store::Subscription::Open(*a_store, "a", so);
          if (!sub.ok()) std::abort();
          a_sub = std::move(*sub);
        }
        store::EventData d = event(buf, ++a_seq);
        (void)a_store->Append("ping", store::ExpectedVersion::Any(), {&d, 1});
      },
      [&](uint8_t*) {
        for (;;) {
          auto k = a_sub->Poll(got, 1);
          if (k.ok() && *k == 1) break;
          a_sub->Wait(1'000'000'000);
        }
        a_sub->AckDelivered();
      });
  a_sub.reset();
  a_store.reset();
  std::filesystem::remove_all(dir);
  return r;
}

}  // namespace

RoundTrip MeasureRoundTrip(Transport t, size_t size, int samples, double rate) {
  struct Restore {
    ~Restore() { Unpin(); }  // later in-process measurements use every CPU
  } restore;
  switch (t) {
    case Transport::kCacheLine: return CacheLine(samples, rate);
    case Transport::kPipe: return PipeLike(samples, size, rate, false);
    case Transport::kSocketPair: return PipeLike(samples, size, rate, true);
    case Transport::kBoostMq: return BoostMq(samples, size, rate);
    case Transport::kMoodycamelThreads: return Moodycamel(samples, size, rate);
    case Transport::kPipelineSpin: return Pipeline(samples, size, rate, store::WaitStrategy::kSpin);
    case Transport::kPipelinePark: return Pipeline(samples, size, rate, store::WaitStrategy::kPark);
  }
  return {};
}

}  // namespace hfe::bench
