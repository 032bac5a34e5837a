// MetricsHandler: counters and histograms from domain events, in the Prometheus text exposition format,
// written to a file (atomically, with the handler's checkpoint in it) and served on a loopback HTTP endpoint.
//
// Metrics (names from the Host Factory documentation):
//   domain_events_total{event_type}                       counter, every event
//   requests_created_total{template_id,request_type}      counter
//   requests_completed_total{template_id}                 counter
//   request_machine_count{template_id}                    histogram of requested machines
//   request_duration_seconds{template_id}                 histogram of created -> completed time
// A restarted handler process reloads its file: counts survive, and events at or before the checkpoint are
// not counted twice.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "handlers/handler.h"

namespace hfe::handlers {

// A set of Prometheus series: counters and fixed-bucket histograms, by name and label set.
class PromRegistry {
 public:
  void Inc(const std::string& name, const std::string& labels, double by = 1);
  void Observe(const std::string& name, const std::string& labels, double v, const std::vector<double>& bounds);
  double Counter(const std::string& name, const std::string& labels) const;
  uint64_t HistogramCount(const std::string& name, const std::string& labels) const;
  // The exposition text (HELP/TYPE lines from `help`), and its inverse for the series this class writes.
  std::string Exposition(const std::map<std::string, std::string>& help) const;
  void Restore(const std::string& exposition);

 private:
  struct Hist {
    std::vector<double> bounds;
    std::vector<uint64_t> counts;  // per bucket (not cumulative); the last is +Inf
    double sum = 0;
  };
  std::map<std::string, std::map<std::string, double>> counters_;
  std::map<std::string, std::map<std::string, Hist>> hists_;
};

struct MetricsOptions {
  std::string path;           // DIR/metrics.prom
  int port = 0;               // loopback HTTP port; 0 = no endpoint
  int write_every = 100;      // rewrite the file every N events (and when the handler is destroyed)
};

class MetricsHandler : public Handler {
 public:
  static Result<std::shared_ptr<MetricsHandler>> Open(const MetricsOptions& options);
  ~MetricsHandler() override;

  std::string_view name() const override { return "metrics"; }
  Status Handle(const Event& e) override;
  uint64_t Checkpoint() const override { return checkpoint_.load(std::memory_order_acquire); }
  // Counts reach the file every `write_every` events and on Flush(): only those are durable.
  uint64_t DurableThrough() const override;
  Status Flush() override { return WriteFile(); }

  std::string Exposition() const;
  Status WriteFile() const;
  int port() const { return bound_port_; }
  double Counter(const std::string& name, const std::string& labels) const;
  // For the performance handler: event_processing_latency{event_type} (seconds).
  void ObserveLatency(const std::string& event_type, double seconds);

 private:
  MetricsHandler() = default;
  void Serve();

  MetricsOptions o_;
  mutable std::mutex mu_;
  mutable std::mutex file_mu_;  // one writer of the file at a time (worker's periodic write, reader's flush)
  PromRegistry reg_;
  std::map<std::string, int64_t> request_created_at_;   // request id -> occurred_at, for durations
  std::map<std::string, std::string> request_template_;
  std::atomic<uint64_t> checkpoint_{0};
  mutable std::atomic<uint64_t> written_{0};  // the checkpoint as of the last file write
  std::atomic<bool> dirty_{false};
  uint64_t since_write_ = 0;
  int listen_fd_ = -1;
  int bound_port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread server_;
};

}  // namespace hfe::handlers
