// AuditHandler: an append-only JSON-lines audit log of every event, in the documentation's shape:
//   {"event_type":"REQUEST_CREATED","resource_id":"request-42","details":{...the event's fields...},
//    "event_id":"...","position":123,"stream":"request-42","version":0,"occurred_at":"..."}
// One write(2) per entry on an O_APPEND file; rotated by size (audit.jsonl -> .1 -> .2 ..., `keep` files);
// synced per the policy. Idempotent across crashes: on open a torn last line is cut off and the position of
// the last complete entry becomes the checkpoint, so a redelivered event is never written twice.
#pragma once

#include <atomic>
#include <memory>
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

  uint64_t entries() const { return file_.entries(); }

 private:
  AuditHandler() = default;
  JsonlFile file_;
  std::atomic<uint64_t> last_position_{0};
  std::unique_ptr<EventJson> json_;
};

}  // namespace hfe::handlers
