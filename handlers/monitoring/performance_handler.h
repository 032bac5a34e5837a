// PerformanceHandler: how long events take from their occurrence to their handling, per event type
// (percentiles from a log-linear histogram, and the event_processing_latency Prometheus histogram through a
// MetricsHandler), and slow operations: an event handled later than the threshold after it occurred is
// recorded as a PerformanceMetricEvent of its own in the store's "$performance" stream (once per event).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "handlers/handler.h"
#include "handlers/histogram.h"
#include "handlers/monitoring/metrics_handler.h"
#include "store/event_store.h"

namespace hfe::handlers {

struct PerformanceOptions {
  double slow_threshold_seconds = 5.0;
  std::shared_ptr<MetricsHandler> metrics;  // where event_processing_latency goes; may be null
};

struct LatencySummary {
  uint64_t count = 0;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
};

class PerformanceHandler : public Handler {
 public:
  PerformanceHandler(store::EventStore& store, PerformanceOptions options) : store_(store), o_(std::move(options)) {}
  std::string_view name() const override { return "performance"; }
  Status Handle(const Event& e) override;

  std::map<std::string, LatencySummary> Summary() const;
  uint64_t slow_operations() const { return slow_.load(); }

 private:
  store::EventStore& store_;
  PerformanceOptions o_;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Histogram>> by_type_;
  std::atomic<uint64_t> slow_{0};
};

}  // namespace hfe::handlers
