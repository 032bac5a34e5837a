// EventStore: the public facade over Log.
#include "store/event_store.h"

#include <algorithm>
#include <cstdio>

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

namespace {

Status RefuseSystemStream(std::string_view stream) {
  if (stream.empty() || stream[0] != '$') return Status::Ok();
  return InvalidArgument("stream \"" + std::string(stream.substr(0, 200)) +
                         "\" begins with '$': such streams are the store's own and cannot be written by users " +
                         "(choose a name that does not begin with '$')");
}

}  // namespace

Status EventStore::CheckStreamName(std::string_view s) { return CheckName(s, "stream name", format::kMaxStreamName); }

Status EventStore::CheckName(std::string_view s, std::string_view what, size_t max_bytes) {
  if (s.empty() || s.size() > max_bytes) {
    return InvalidArgument(std::string(what) + " must be 1.." + std::to_string(max_bytes) + " bytes, found " +
                           std::to_string(s.size()));
  }
  auto bad = [&](size_t i, const char* problem) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02x", static_cast<unsigned char>(s[i]));
    return InvalidArgument(std::string(what) + " has " + problem + " at byte " + std::to_string(i) + " (" + hex +
                           "); expected UTF-8 text without control characters");
  };
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7f) return bad(i, "a control character");
      ++i;
      continue;
    }
    // A multi-byte sequence: lead byte, then 1..3 continuation bytes; overlong forms, surrogates and code
    // points past U+10FFFF are not UTF-8.
    size_t n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
    if (n == 0 || c > 0xf4 || i + n > s.size()) return bad(i, "invalid UTF-8");
    uint32_t cp = c & (0xff >> (n + 1));
    for (size_t k = 1; k < n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return bad(i, "invalid UTF-8");
      cp = (cp << 6) | (cc & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff))) {
      return bad(i, "invalid UTF-8");
    }
    if (cp >= 0x80 && cp < 0xa0) return bad(i, "a control character");
    i += n;
  }
  return Status::Ok();
}

Result<AppendResult> EventStore::Append(std::string_view stream, ExpectedVersion expected,
                                        std::span<const EventData> events, std::span<uint64_t> positions) {
  HFE_RETURN_IF_ERROR(RefuseSystemStream(stream));
  HFE_RETURN_IF_ERROR(CheckNotTombstoned(stream));
  StreamAppend a{stream, expected, events};
  return log_->Append(std::span<const StreamAppend>(&a, 1), positions);
}

Result<AppendResult> EventStore::AppendMulti(std::span<const StreamAppend> appends, std::span<uint64_t> positions) {
  for (const auto& a : appends) HFE_RETURN_IF_ERROR(RefuseSystemStream(a.stream));
  for (const auto& a : appends) HFE_RETURN_IF_ERROR(CheckNotTombstoned(a.stream));
  return log_->Append(appends, positions);
}

Result<AppendTicket> EventStore::AppendAsync(std::string_view stream, ExpectedVersion expected,
                                             std::span<const EventData> events) {
  HFE_RETURN_IF_ERROR(RefuseSystemStream(stream));
  HFE_RETURN_IF_ERROR(CheckNotTombstoned(stream));
  StreamAppend a{stream, expected, events};
  return log_->Commit(std::span<const StreamAppend>(&a, 1), 0, /*pipelined=*/true);
}

Result<AppendTicket> EventStore::AppendMultiAsync(std::span<const StreamAppend> appends) {
  for (const auto& a : appends) HFE_RETURN_IF_ERROR(RefuseSystemStream(a.stream));
  for (const auto& a : appends) HFE_RETURN_IF_ERROR(CheckNotTombstoned(a.stream));
  return log_->Commit(appends, 0, /*pipelined=*/true);
}

Result<AppendResult> EventStore::Await(const AppendTicket& ticket, std::span<uint64_t> positions) {
  return log_->Await(ticket, positions);
}
std::optional<Result<AppendResult>> EventStore::TryGet(const AppendTicket& ticket, std::span<uint64_t> positions) {
  return log_->TryGet(ticket, positions);
}
Status EventStore::Flush() { return log_->Flush(); }

Result<AppendResult> EventStore::AppendSystem(std::string_view stream, ExpectedVersion expected,
                                              std::span<const EventData> events, std::span<uint64_t> positions) {
  if (stream.empty() || stream[0] != '$') {
    return InvalidArgument("AppendSystem writes the store's own streams, whose names begin with '$'; found \"" +
                           std::string(stream.substr(0, 200)) + "\" (use Append for it)");
  }
  StreamAppend a{stream, expected, events};
  return log_->Append(std::span<const StreamAppend>(&a, 1), positions);
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
EventStore::ViewScope::ViewScope(const EventStore& store) : log_(store.log_.get()), slot_(log_->EnterRead()) {}
EventStore::ViewScope::~ViewScope() { log_->LeaveRead(slot_); }
void EventStore::ViewScope::Renew() {
  log_->LeaveRead(slot_);
  slot_ = log_->EnterRead();
}

const RecoveryReport& EventStore::recovery_report() const { return log_->recovery_report(); }
uint64_t EventStore::ResolvedPosition() const { return log_->resolved(); }
const std::string& EventStore::dir() const { return log_->dir(); }

}  // namespace hfe::store
