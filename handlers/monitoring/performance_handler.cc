// PerformanceHandler: latency bookkeeping and slow-operation events.
#include "handlers/monitoring/performance_handler.h"

#include "handlers/envelope.h"
#include "ipc/clock.h"

namespace hfe::handlers {

Status PerformanceHandler::Handle(const Event& e) {
  int64_t latency_ns = std::max<int64_t>(0, clock::WallNanos() - e.view.occurred_at_ns);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto& h = by_type_[e.type_name];
    if (!h) h = std::make_unique<Histogram>();
    h->Record(static_cast<uint64_t>(latency_ns));
  }
  const double seconds = static_cast<double>(latency_ns) / 1e9;
  if (o_.metrics) o_.metrics->ObserveLatency(e.type_name, seconds);
  if (seconds <= o_.slow_threshold_seconds) return Status::Ok();
  // A slow operation, recorded as an event of its own; its id derives from the slow event's, so a
  // redelivery records it once.
  flatbuffers::FlatBufferBuilder b(512);
  std::vector<flatbuffers::Offset<schema::KeyValue>> ctx = {
      schema::CreateKeyValueDirect(b, "event_id", e.view.id.ToString().c_str()),
      schema::CreateKeyValueDirect(b, "event_type", e.type_name),
      schema::CreateKeyValueDirect(b, "position", std::to_string(e.view.position).c_str()),
      schema::CreateKeyValueDirect(b, "stream", std::string(e.view.stream).c_str()),
      schema::CreateKeyValueDirect(b, "threshold_seconds", std::to_string(o_.slow_threshold_seconds).c_str())};
  auto body = schema::CreatePerformanceMetricEvent(b, b.CreateString("hfevents.handlers"), b.CreateVectorOfSortedTables(&ctx),
                                                   b.CreateString("slow_event_processing"), seconds, b.CreateString("s"));
  EnvelopeMeta meta;
  meta.event_id = store::EventId{e.view.id.hi ^ 0x534c4f5700000000ull, e.view.id.lo ^ 0x706572666f726dull};
  meta.stream_id = "$performance";
  meta.stream_type = "performance";
  meta.causation_id = e.view.id;
  store::EventData d;
  FinishEnvelope(b, meta, schema::EventBody::PerformanceMetricEvent, body.Union(), &d);
  auto r = store_.AppendSystem("$performance", store::ExpectedVersion::Any(), {&d, 1});
  if (!r.ok()) return r.status();
  if (!r->already_appended) slow_.fetch_add(1, std::memory_order_relaxed);
  return Status::Ok();
}

std::map<std::string, LatencySummary> PerformanceHandler::Summary() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, LatencySummary> out;
  for (const auto& [type, h] : by_type_) {
    out[type] = {h->count(), static_cast<double>(h->Percentile(0.5)) / 1e6, static_cast<double>(h->Percentile(0.99)) / 1e6,
                 static_cast<double>(h->max()) / 1e6};
  }
  return out;
}

}  // namespace hfe::handlers
