// EventStore: the public facade over Log.
#include "store/event_store.h"

#include "store/internal/log.h"

namespace hfe::store {

EventStore::EventStore(std::unique_ptr<Log> log) : log_(std::move(log)) {}
EventStore::~EventStore() = default;

Result<std::unique_ptr<EventStore>> EventStore::Open(const std::string& dir, const StoreOptions& options) {
  auto log = Log::Open(dir, options);
  if (!log.ok()) return log.status();
  return std::unique_ptr<EventStore>(new EventStore(std::move(*log)));
}

Result<AppendResult> EventStore::Append(std::string_view stream, ExpectedVersion expected,
                                        std::span<const EventData> events, std::span<uint64_t> positions) {
  StreamAppend a{stream, expected, events};
  return log_->Append(std::span<const StreamAppend>(&a, 1), positions);
}

Result<AppendResult> EventStore::AppendMulti(std::span<const StreamAppend> appends, std::span<uint64_t> positions) {
  return log_->Append(appends, positions);
}

Status EventStore::ReadStream(std::string_view stream, uint64_t from_version, const Visitor& visit) const {
  return log_->ReadStream(stream, from_version, visit);
}
Status EventStore::ReadAll(uint64_t from_position, const Visitor& visit) const { return log_->Scan(from_position, visit); }
Status EventStore::ReadSince(int64_t since_wall_ns, const Visitor& visit) const {
  return log_->ReadSince(since_wall_ns, visit);
}
Status EventStore::ReadLast(uint64_t n, const Visitor& visit) const { return log_->ReadLast(n, visit); }
StreamInfo EventStore::GetStream(std::string_view stream) const { return log_->GetStream(stream); }
StoreStats EventStore::Stats() const { return log_->Stats(); }
Result<EventStore::RedactResult> EventStore::Redact(uint64_t position) { return log_->Redact(position); }
Result<VerifyReport> EventStore::Verify() const { return log_->Verify(); }
const RecoveryReport& EventStore::recovery_report() const { return log_->recovery_report(); }
uint64_t EventStore::ResolvedPosition() const { return log_->resolved(); }
const std::string& EventStore::dir() const { return log_->dir(); }

}  // namespace hfe::store
