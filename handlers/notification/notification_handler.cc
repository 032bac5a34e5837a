// NotificationHandler: which events notify or alert, the entries, and the bounded hook runner.
#include "handlers/notification/notification_handler.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>

#include "handlers/aggregates/aggregate.h"
#include "ipc/clock.h"

namespace hfe::handlers {

using aggregates::Str;

Result<std::shared_ptr<NotificationHandler>> NotificationHandler::Open(const NotificationOptions& o) {
  std::shared_ptr<NotificationHandler> h(new NotificationHandler());
  h->o_ = o;
  auto json = EventJson::Create();
  if (!json.ok()) return json.status();
  h->json_ = std::move(*json);
  HFE_RETURN_IF_ERROR(h->notifications_.Open({o.dir + "/notifications.jsonl"}));
  HFE_RETURN_IF_ERROR(h->alerts_.Open({o.dir + "/alerts.jsonl"}));
  h->checkpoint_ = std::max(h->notifications_.last_position(), h->alerts_.last_position());
  if (!o.hook.empty()) h->hook_thread_ = std::thread([raw = h.get()] { raw->RunHooks(); });
  return h;
}

NotificationHandler::~NotificationHandler() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (hook_thread_.joinable()) hook_thread_.join();
}

const char* NotificationHandler::AlertSeverity(std::string_view type, const schema::Envelope& e) {
  if (type == "ApplicationErrorEvent" || type == "StorageStrategyFailoverEvent") return "critical";
  for (std::string_view word : {"Failed", "Error", "Exception"}) {
    if (type.find(word) != std::string_view::npos) return "error";
  }
  if (type.find("Timeout") != std::string_view::npos) return "warning";
  if (e.body_type() == schema::EventBody::RequestStatusChangedEvent &&
      Str(e.body_as_RequestStatusChangedEvent()->new_status()) == "failed") {
    return "error";
  }
  if (e.body_type() == schema::EventBody::MachineStatusChangedEvent &&
      Str(e.body_as_MachineStatusChangedEvent()->new_status()) == "failed") {
    return "error";
  }
  return nullptr;
}

Status NotificationHandler::Handle(const Event& e) {
  const schema::Envelope& env = e.envelope;
  nlohmann::json note;
  switch (env.body_type()) {
    case schema::EventBody::RequestCompletedEvent: {
      auto* c = env.body_as_RequestCompletedEvent();
      std::vector<std::string> machines;
      if (c->machine_ids()) {
        for (const auto* m : *c->machine_ids()) machines.push_back(m->str());
      }
      bool partial = Str(c->completion_status()) == "partial";
      note = {{"title", partial ? "Request Completed Partially" : "Request Completed Successfully"},
              {"message", "Request " + Str(c->request_id()) + " completed with " + std::to_string(machines.size()) + " machines"},
              {"severity", partial ? "warning" : "info"},
              {"details", {{"request_id", Str(c->request_id())}, {"machine_ids", machines},
                           {"duration", std::to_string(static_cast<int64_t>(c->duration_seconds())) + "s"},
                           {"template_id", Str(c->template_id())}}}};
      break;
    }
    case schema::EventBody::RequestFailedEvent: {
      auto* f = env.body_as_RequestFailedEvent();
      note = {{"title", "Request Failed"},
              {"message", "Request " + Str(f->request_id()) + " failed: " + Str(f->error_message())},
              {"severity", "error"},
              {"details", {{"request_id", Str(f->request_id())}, {"failure_reason", Str(f->failure_reason())},
                           {"error_code", Str(f->error_code())}, {"failed_at", clock::FormatIso8601(env.occurred_at_ns())}}}};
      break;
    }
    case schema::EventBody::RequestStatusChangedEvent: {
      auto* s = env.body_as_RequestStatusChangedEvent();
      if (Str(s->new_status()) != "failed") break;
      note = {{"title", "Request Failed"},
              {"message", "Request " + Str(s->request_id()) + " failed: " + Str(s->reason())},
              {"severity", "error"},
              {"details", {{"request_id", Str(s->request_id())}, {"failure_reason", Str(s->reason())},
                           {"failed_at", clock::FormatIso8601(env.occurred_at_ns())}}}};
      break;
    }
    default:
      break;
  }
  if (!note.is_null()) {
    note["event_id"] = e.view.id.ToString();
    note["position"] = e.view.position;
    HFE_RETURN_IF_ERROR(notifications_.Append(note));
    notified_.fetch_add(1, std::memory_order_relaxed);
    Enqueue(note.dump());
  }
  if (const char* severity = AlertSeverity(e.type_name, env)) {
    nlohmann::json alert = {{"alert_type", "SYSTEM_ERROR"},
                            {"severity", severity},
                            {"message", std::string("Error event detected: ") + e.type_name},
                            {"event_type", e.type_name},
                            {"details", json_->Body(e.view.payload)},
                            {"timestamp", clock::FormatIso8601(env.occurred_at_ns())},
                            {"event_id", e.view.id.ToString()},
                            {"position", e.view.position}};
    HFE_RETURN_IF_ERROR(alerts_.Append(alert));
    alerted_.fetch_add(1, std::memory_order_relaxed);
    Enqueue(alert.dump());
  }
  checkpoint_.store(e.view.position, std::memory_order_release);
  return Status::Ok();
}

void NotificationHandler::Enqueue(const std::string& line) {
  if (o_.hook.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.size() >= o_.hook_queue) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    queue_.push_back(line);
  }
  cv_.notify_one();
}

void NotificationHandler::RunHooks() {
  // A hook that exits without reading its input must not kill the process: SIGPIPE is blocked on this
  // thread (the one that writes to hooks), so the write just fails.
  sigset_t pipe_signal;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and nothing left
    std::string input = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    lock.unlock();
    bool ok = RunHook(input);
    hook_runs_.fetch_add(1, std::memory_order_relaxed);
    if (!ok) hook_failures_.fetch_add(1, std::memory_order_relaxed);
    lock.lock();
    busy_ = false;
    cv_.notify_all();
  }
}

// Runs the hook with `input` on stdin; kills it past the timeout. True when it exited 0 in time.
bool NotificationHandler::RunHook(const std::string& input) {
  int in[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return false;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in[0], 0);
    ::setpgid(0, 0);
    ::execl("/bin/sh", "sh", "-c", o_.hook.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(in[0]);
  if (pid < 0) {
    ::close(in[1]);
    return false;
  }
  std::string data = input + "\n";
  (void)!::write(in[1], data.data(), data.size());
  ::close(in[1]);
  const int64_t deadline = clock::MonotonicNanos() + int64_t{o_.hook_timeout_ms} * 1'000'000;
  int status = 0;
  for (;;) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (clock::MonotonicNanos() > deadline) {
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      hook_timeouts_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

bool NotificationHandler::WaitForHooks(int timeout_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return queue_.empty() && !busy_; });
}

NotificationStats NotificationHandler::stats() const {
  return {notified_.load(), alerted_.load(), hook_runs_.load(), hook_failures_.load(), hook_timeouts_.load(), dropped_.load()};
}

}  // namespace hfe::handlers
