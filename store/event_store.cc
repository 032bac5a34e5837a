// EventStore: the public facade over Log.
#include "store/event_store.h"

#include <algorithm>

#include "ipc/clock.h"

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
  HFE_RETURN_IF_ERROR(CheckNotTombstoned(stream));
  StreamAppend a{stream, expected, events};
  return log_->Append(std::span<const StreamAppend>(&a, 1), positions);
}

Result<AppendResult> EventStore::AppendMulti(std::span<const StreamAppend> appends, std::span<uint64_t> positions) {
  for (const auto& a : appends) HFE_RETURN_IF_ERROR(CheckNotTombstoned(a.stream));
  return log_->Append(appends, positions);
}

Status EventStore::ReadStream(std::string_view stream, uint64_t from_version, const Visitor& visit) const {
  if (stream.empty() || stream[0] == '$' || !HasMetadata(stream)) return log_->ReadStream(stream, from_version, visit);
  auto m = GetStreamMetadata(stream);
  if (!m.ok()) return m.status();
  uint64_t from = std::max(from_version, m->truncate_before);
  if (m->max_count > 0) {
    const uint64_t next = log_->GetStream(stream).next_version;
    if (next > m->max_count) from = std::max(from, next - m->max_count);
  }
  if (m->hard_deleted || from == UINT64_MAX) return Status::Ok();
  if (m->max_age_ns <= 0) return log_->ReadStream(stream, from, visit);
  const int64_t oldest = clock::WallNanos() - m->max_age_ns;
  return log_->ReadStream(stream, from, [&](const EventView& v) { return v.occurred_at_ns < oldest || visit(v); });
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
