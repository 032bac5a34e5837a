// Message transports measured side by side: each moves a message from process A to process B and back.
// Implementations: one shared cache line, pipe, UNIX socketpair, boost::interprocess::message_queue,
// moodycamel ConcurrentQueue between two threads, and the hfevents pipeline (append + subscription).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace hfe::bench {

// One round-trip measurement: A sends `samples` messages of `size` bytes (the first 8 carry the send time),
// B records each message's one-way latency and echoes it, A records the round trip.
struct RoundTrip {
  std::vector<int64_t> rtt;
  std::vector<int64_t> oneway;
};

enum class Transport { kCacheLine, kPipe, kSocketPair, kBoostMq, kMoodycamelThreads, kPipelineSpin, kPipelinePark };
const char* TransportName(Transport t);

// Runs A in this process (pinned to CPU 0) and B in a child process (or thread, for moodycamel) on CPU 1.
// With rate > 0, A sends on a fixed schedule and latencies count from the scheduled time.
RoundTrip MeasureRoundTrip(Transport t, size_t size, int samples, double rate);

// Pins the calling thread to a CPU (modulo the CPUs online); Unpin lets it run on every CPU again.
void Pin(int cpu);
void Unpin();

}  // namespace hfe::bench
