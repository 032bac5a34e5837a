// A log-linear histogram of non-negative values (latencies in ns, counts, seconds scaled by the caller):
// 64 powers of two, each split in 16 linear sub-buckets, so any value is kept within 6.25%. Recording is
// lock-free (relaxed atomics); percentiles read a consistent-enough snapshot for reporting.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

namespace hfe::handlers {

class Histogram {
 public:
  static constexpr int kSub = 16;

  void Record(uint64_t v) {
    buckets_[Index(v)].fetch_add(1, std::memory_order_relaxed);
    count_.fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(v, std::memory_order_relaxed);
    uint64_t m = max_.load(std::memory_order_relaxed);
    while (v > m && !max_.compare_exchange_weak(m, v, std::memory_order_relaxed)) {
    }
  }
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  uint64_t sum() const { return sum_.load(std::memory_order_relaxed); }
  uint64_t max() const { return max_.load(std::memory_order_relaxed); }
  // The value at quantile q (0..1): the upper bound of the bucket that holds it.
  uint64_t Percentile(double q) const {
    uint64_t n = count();
    if (n == 0) return 0;
    uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(n - 1)) + 1, seen = 0;
    for (size_t i = 0; i < buckets_.size(); ++i) {
      seen += buckets_[i].load(std::memory_order_relaxed);
      if (seen >= rank) return UpperBound(i) < max() ? UpperBound(i) : max();
    }
    return max();
  }
  // Number of recorded values <= bound (for cumulative exposition buckets).
  uint64_t CountAtMost(uint64_t bound) const {
    uint64_t c = 0;
    for (size_t i = 0; i < buckets_.size() && UpperBound(i) <= bound; ++i) c += buckets_[i].load(std::memory_order_relaxed);
    return c;
  }

 private:
  static size_t Index(uint64_t v) {
    if (v < kSub) return static_cast<size_t>(v);
    int msb = 63 - __builtin_clzll(v);  // >= 4
    uint64_t sub = (v >> (msb - 4)) & (kSub - 1);
    return static_cast<size_t>((msb - 3) * kSub) + sub;
  }
  static uint64_t UpperBound(size_t i) {
    if (i < kSub) return i;
    int msb = static_cast<int>(i / kSub) + 3;
    uint64_t sub = i % kSub;
    return ((uint64_t{kSub} + sub + 1) << (msb - 4)) - 1;
  }
  std::array<std::atomic<uint64_t>, 64 * kSub> buckets_{};
  std::atomic<uint64_t> count_{0}, sum_{0}, max_{0};
};

}  // namespace hfe::handlers
