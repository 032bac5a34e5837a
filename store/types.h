// Value types of the store's public API: event ids, expected versions, events to append, views of stored events.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace hfe::store {

// A 16-byte event id (UUID). Printed as the canonical 8-4-4-4-12 hex form.
struct EventId {
  uint64_t hi = 0;
  uint64_t lo = 0;

  static EventId Random();  // version 4 UUID from a per-thread generator seeded from the kernel
  static std::optional<EventId> Parse(std::string_view text);
  std::string ToString() const;
  bool IsNil() const { return hi == 0 && lo == 0; }
  friend bool operator==(const EventId&, const EventId&) = default;
};

// What the caller believes the stream's current version is. Versions count from 0; a stream with no events
// has no version (NoStream).
struct ExpectedVersion {
  enum class Kind : uint8_t { kAny = 0, kNoStream = 1, kStreamExists = 2, kExact = 3 };
  Kind kind = Kind::kAny;
  uint64_t version = 0;  // with kExact: the version of the stream's newest event

  static ExpectedVersion Any() { return {Kind::kAny, 0}; }
  static ExpectedVersion NoStream() { return {Kind::kNoStream, 0}; }
  static ExpectedVersion StreamExists() { return {Kind::kStreamExists, 0}; }
  static ExpectedVersion Exact(uint64_t v) { return {Kind::kExact, v}; }
  // "any", "no-stream", "exists" or a version number.
  static std::optional<ExpectedVersion> Parse(std::string_view text);
  std::string ToString() const;
};

// One event to append. The payload is normally an encoded FlatBuffers Envelope (see handlers' encoder);
// the store copies it into the log and never interprets it.
struct EventData {
  EventId id;
  uint32_t type = 0;          // event type number (the EventBody union index)
  int64_t occurred_at_ns = 0; // wall clock; 0 means "now"
  std::span<const uint8_t> payload;
};

// Events for one stream within a (possibly multi-stream) atomic append.
struct StreamAppend {
  std::string_view stream;
  ExpectedVersion expected;
  std::span<const EventData> events;
};

struct AppendResult {
  bool already_appended = false;  // every event id had been appended before: nothing was written
  uint64_t first_position = 0;    // position of the first event (the original one when already_appended)
  uint64_t last_position = 0;
  uint64_t last_version = 0;      // version of the batch's last event in its stream
  // When already_appended: the stream that holds the original events (ids are global, so it may be another
  // stream than the one appended to). Points into the mapping, like EventView::stream; empty if unreadable.
  std::string_view original_stream;
};

// A batch committed by AppendAsync: Await or TryGet collects its verdict. Valid for the store that made it.
struct AppendTicket {
  uint64_t position = ~0ull;  // where the batch's frame starts in the log
  uint32_t length = 0;        // the frame's length in bytes
  uint32_t events = 0;        // events in the batch
  uint64_t store = 0;         // which open store made it (a number drawn at open)
};

// A stored event, read in place. The spans point into the shared mapping, which stays mapped while the
// EventStore that produced them is open (until ReleaseRetired unmaps segments retention retired). The payload
// is the event's whole body, or zeros when it was redacted, for as long as the visit that received the view
// runs (or an EventStore::ViewScope of the reading thread holds); after that a redaction may zero it.
struct EventView {
  uint64_t position = 0;
  uint64_t version = 0;
  uint64_t prev_position = 0;  // position of the stream's previous event; ~0 for its first
  std::string_view stream;
  uint32_t type = 0;
  EventId id;
  int64_t occurred_at_ns = 0;
  std::span<const uint8_t> payload;
  bool redacted = false;       // the payload was zeroed by a redaction (EventStore::Redact)
};

struct StreamInfo {
  bool exists = false;
  uint64_t next_version = 0;   // number of events
  uint64_t last_position = 0;
  bool hard_deleted = false;   // deleted for good: every append to it is refused
};

}  // namespace hfe::store
