// A user's program built against the installed hfevents package.
#include "store/event_store.h"
#include "schemas/events_generated.h"

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  auto store = hfe::store::EventStore::Open(argv[1], {.create_if_missing = true, .segment_size = 1 << 20,
                                                      .stream_capacity = 1024, .dedup_window = 1024});
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    return 1;
  }
  const char body[] = "payload";
  hfe::store::EventData ev[2];
  for (auto& e : ev) {
    e.id = hfe::store::EventId::Random();
    e.type = static_cast<uint32_t>(hfe::schema::EventBody::RequestCreatedEvent);
    e.payload = {reinterpret_cast<const uint8_t*>(body), sizeof body};
  }
  auto r = (*store)->Append("request-1", hfe::store::ExpectedVersion::NoStream(), ev);
  if (!r.ok()) return 1;
  int n = 0;
  if (!(*store)->ReadStream("request-1", 0, [&](const hfe::store::EventView&) { return ++n, true; }).ok()) return 1;
  std::printf("appended 2 events, read %d\n", n);
  return 0;
}
