// NotificationHandler: notifications for requests that completed or failed, and alerts (with a severity) for
// every error-like event (types named ...Failed, ...Error, ...Timeout, ...Exception, or a status change to
// failed). Written as JSON lines to DIR/notifications.jsonl and DIR/alerts.jsonl; optionally also sent to a
// command hook (a program run with the entry on stdin). Hooks run on their own thread from a bounded queue,
// each with a timeout, so a slow or hanging hook never blocks the dispatcher: when the queue is full an entry
// is not sent to the hook (it is still in the file) and counted as dropped.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "handlers/event_json.h"
#include "handlers/handler.h"
#include "handlers/jsonl_file.h"

namespace hfe::handlers {

struct NotificationOptions {
  std::string dir;                // notifications.jsonl and alerts.jsonl go here
  std::string hook;               // shell command given each entry on stdin; empty: none
  int hook_timeout_ms = 2000;     // a hook running longer is killed
  size_t hook_queue = 1000;       // entries waiting for the hook at most
};

struct NotificationStats {
  uint64_t notifications = 0, alerts = 0, hook_runs = 0, hook_failures = 0, hook_timeouts = 0, hook_dropped = 0;
};

class NotificationHandler : public Handler {
 public:
  static Result<std::shared_ptr<NotificationHandler>> Open(const NotificationOptions& options);
  ~NotificationHandler() override;

  std::string_view name() const override { return "notification"; }
  Status Handle(const Event& e) override;
  uint64_t Checkpoint() const override { return checkpoint_.load(std::memory_order_acquire); }
  NotificationStats stats() const;
  // Waits (at most timeout_ms) until the hook queue is empty; for tests and orderly shutdown.
  bool WaitForHooks(int timeout_ms);

  // "error", "critical" or "warning" for an error-like event type; nullptr for any other.
  static const char* AlertSeverity(std::string_view type_name, const schema::Envelope& e);

 private:
  NotificationHandler() = default;
  void Enqueue(const std::string& line);
  void RunHooks();
  bool RunHook(const std::string& input);

  NotificationOptions o_;
  JsonlFile notifications_, alerts_;
  std::unique_ptr<EventJson> json_;
  std::atomic<uint64_t> checkpoint_{0};
  std::atomic<uint64_t> notified_{0}, alerted_{0}, hook_runs_{0}, hook_failures_{0}, hook_timeouts_{0}, dropped_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  bool stop_ = false;
  bool busy_ = false;
  std::thread hook_thread_;
};

}  // namespace hfe::handlers
