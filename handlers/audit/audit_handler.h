// AuditHandler: an append-only JSON-lines audit log of every event, in the documentation's shape:
//   {"event_type":"REQUEST_CREATED","resource_id":"request-42","details":{...the event's fields...},
//    "event_id":"...","position":123,"stream":"request-42","version":0,"occurred_at":"..."}
// Entries are collected and written in whole lines, up to 64 KiB at a time and whenever the handler process goes
// idle (Flush), on an O_APPEND file; rotated by size (audit.jsonl -> .1 -> .2 ..., `keep` files); synced per
// the policy. The subscription is acknowledged only through what is in the file (DurableThrough), so entries
// lost with a killed process are delivered again. Idempotent across crashes: on open a torn last line is cut
// off and the position of the last complete entry becomes the checkpoint, so no event is written twice.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "handlers/event_json.h"
#include "handlers/handler.h"
#include "handlers/jsonl_file.h"

namespace hfe::handlers {

using AuditOptions = JsonlOptions;  // path e.g. DIR/audit.jsonl, rotation size, files kept, sync policy

class AuditHandler : public Handler {
 public:
  static Result<std::shared_ptr<AuditHandler>> Open(const AuditOptions& options);

  std::string_view name() const override { return "audit"; }
  Status Handle(const Event& e) override;
  uint64_t Checkpoint() const override { return last_position_.load(std::memory_order_acquire); }
  uint64_t DurableThrough() const override { return written_position_.load(std::memory_order_acquire); }
  Status Flush() override;

  uint64_t entries() const;

 private:
  AuditHandler() = default;
  void Published();  // under mu_: publishes the file's positions to the atomics

  mutable std::mutex mu_;  // Handle (a worker) against Flush (the reader thread); uncontended in between
  JsonlFile file_;
  std::atomic<uint64_t> last_position_{0};     // newest entry appended (maybe still buffered)
  std::atomic<uint64_t> written_position_{0};  // newest entry in the file
  std::unique_ptr<EventJson> json_;
  std::string line_;  // reused between events
};

}  // namespace hfe::handlers
