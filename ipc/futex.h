// Futex wait/wake on a 32-bit word in shared memory (works across processes: no FUTEX_PRIVATE_FLAG).
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <ctime>

namespace hfe::futex {

// Sleeps while *word == expected, at most timeout_ns (negative: forever). Returns false on timeout.
inline bool Wait(std::atomic<uint32_t>* word, uint32_t expected, int64_t timeout_ns = -1) {
  timespec ts;
  timespec* tsp = nullptr;
  if (timeout_ns >= 0) {
    ts.tv_sec = timeout_ns / 1'000'000'000;
    ts.tv_nsec = timeout_ns % 1'000'000'000;
    tsp = &ts;
  }
  long r = syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, expected, tsp, nullptr, 0);
  return !(r == -1 && errno == ETIMEDOUT);
}

// Wakes up to `count` sleepers on `word`; returns how many woke.
inline int Wake(std::atomic<uint32_t>* word, int count = INT32_MAX) {
  return static_cast<int>(syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, count, nullptr, nullptr, 0));
}

static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t), "futex needs a plain 32-bit word");

}  // namespace hfe::futex
