// Helpers for store tests: small stores, events with raw payloads, collecting reads.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "store/event_store.h"
#include "tests/testutil.h"

namespace hfe::store::testing {

inline StoreOptions SmallStore() {
  StoreOptions o;
  o.create_if_missing = true;
  o.segment_size = 1 << 16;
  o.stream_capacity = 4096;
  o.dedup_window = 4096;
  o.unblock_timeout_ms = 200;
  return o;
}

// An event whose payload is `text` and whose id is fresh.
struct TestEvent {
  std::string text;
  EventData data;
  explicit TestEvent(std::string t, uint32_t type = 1) : text(std::move(t)) {
    data.id = EventId::Random();
    data.type = type;
    data.payload = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size());
  }
  TestEvent(const TestEvent& o) : text(o.text), data(o.data) {
    data.payload = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size());
  }
};

// `s` with bytes outside printable ASCII as \\xNN, for failure messages.
inline std::string PrintableName(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  return out;
}

inline std::vector<EventData> Data(const std::vector<TestEvent>& evs) {
  std::vector<EventData> d;
  for (const auto& e : evs) d.push_back(e.data);
  return d;
}

struct ReadEvent {
  uint64_t position;
  uint64_t version;
  std::string stream;
  std::string payload;
  EventId id;
  int64_t occurred_at;
};

inline ReadEvent Copy(const EventView& v) {
  return {v.position, v.version, std::string(v.stream),
          std::string(reinterpret_cast<const char*>(v.payload.data()), v.payload.size()), v.id, v.occurred_at_ns};
}

inline std::vector<ReadEvent> ReadAll(const EventStore& s, uint64_t from = 0) {
  std::vector<ReadEvent> out;
  Status st = s.ReadAll(from, [&](const EventView& v) {
    out.push_back(Copy(v));
    return true;
  });
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

inline std::vector<ReadEvent> ReadStream(const EventStore& s, std::string_view stream, uint64_t from = 0) {
  std::vector<ReadEvent> out;
  Status st = s.ReadStream(stream, from, [&](const EventView& v) {
    out.push_back(Copy(v));
    return true;
  });
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

}  // namespace hfe::store::testing
