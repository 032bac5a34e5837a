// The verbs that talk to the log directly: publish, read, verify, stats, types.
#include <unistd.h>

#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "handlers/envelope.h"
#include "ipc/clock.h"
#include "tools/cli_common.h"
#include "tools/json_codec.h"

namespace hfe::tools {
namespace {

struct PublishArgs {
  std::string stream, type, expected = "any", event_id, data;
};

int Publish(const GlobalOptions& g, const PublishArgs& a) {
  if (Status st = CheckStreamOption(a.stream); !st.ok()) return Fail(st);
  auto expected = store::ExpectedVersion::Parse(a.expected);
  if (!expected) {
    return Fail("--expected-version: expected a version number, any, no-stream or exists; found '" + a.expected + "'");
  }
  auto codec = JsonCodec::Create();
  if (!codec.ok()) return Fail(codec.status());

  // Everything is parsed and encoded before the store is touched: bad input writes nothing.
  std::vector<std::vector<uint8_t>> payloads;
  std::vector<store::EventData> events;
  auto add = [&](const std::string& type, const std::string& id_text, const nlohmann::json& data,
                 const std::string& where) -> std::optional<int> {
    store::EventId id = store::EventId::Random();
    if (!id_text.empty()) {
      auto parsed = store::EventId::Parse(id_text);
      if (!parsed || parsed->IsNil()) {
        return Fail(where + "event id: expected a UUID like 3f2504e0-4f89-41d3-9a0c-0305e82c3301, found '" + id_text + "'");
      }
      id = *parsed;
    }
    int64_t now = clock::WallNanos();
    auto bytes = (*codec)->Encode(a.stream, type, data, id, now);
    if (!bytes.ok()) return Fail(where + bytes.status().message());
    payloads.push_back(std::move(*bytes));
    events.push_back({id, handlers::EventTypeNumber(type), now, {}});
    return std::nullopt;
  };

  if (!a.data.empty()) {
    if (a.type.empty()) return Fail("--type is required with --data (an event type such as RequestCreatedEvent)");
    auto data = nlohmann::json::parse(a.data, nullptr, false);
    if (data.is_discarded()) return Fail("--data: expected a JSON object, found text that is not JSON");
    if (auto rc = add(a.type, a.event_id, data, "")) return *rc;
  } else {
    if (!a.event_id.empty() || !a.type.empty()) {
      return Fail("--type and --event-id go with --data; without --data, events are read as JSON lines on stdin");
    }
    std::string line;
    int n = 0;
    while (std::getline(std::cin, line)) {
      ++n;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      std::string where = "stdin line " + std::to_string(n) + ": ";
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_object()) return Fail(where + "expected a JSON object, found '" + line.substr(0, 80) + "'");
      if (!j.contains("type") || !j["type"].is_string()) return Fail(where + "expected a \"type\" string");
      std::string id_text = j.contains("event_id") && j["event_id"].is_string() ? j["event_id"].get<std::string>() : "";
      if (auto rc = add(j["type"].get<std::string>(), id_text, j.value("data", nlohmann::json::object()), where)) return *rc;
    }
    if (events.empty()) return Fail("no events: expected --data, or JSON lines on stdin");
  }
  for (size_t i = 0; i < events.size(); ++i) events[i].payload = payloads[i];

  auto s = OpenStore(g, /*create=*/true);
  if (!s.ok()) return Fail(s.status());
  std::vector<uint64_t> positions(events.size());
  auto r = (*s)->Append(a.stream, *expected, events, positions);
  if (!r.ok()) return Fail(r.status());
  if (g.json) {
    nlohmann::json out;
    out["result"] = r->already_appended ? "already_appended" : "appended";
    out["stream"] = a.stream;
    if (r->already_appended) out["original_stream"] = std::string(r->original_stream);
    out["positions"] = positions;
    out["version"] = r->last_version;
    out["events"] = events.size();
    std::vector<std::string> ids;
    for (const auto& e : events) ids.push_back(e.id.ToString());
    out["event_ids"] = ids;
    std::cout << out.dump() << "\n";
  } else if (r->already_appended && !r->original_stream.empty() && r->original_stream != a.stream) {
    // Event ids are global: the originals may sit in another stream, and the answer names it.
    std::printf("already appended %zu event%s: the id%s belong%s to stream \"%.*s\" (not \"%s\"), position%s %llu%s%s, "
                "version %llu; nothing was written\n",
                events.size(), events.size() == 1 ? "" : "s", events.size() == 1 ? "" : "s", events.size() == 1 ? "s" : "",
                static_cast<int>(r->original_stream.size()), r->original_stream.data(), a.stream.c_str(),
                events.size() == 1 ? "" : "s", static_cast<unsigned long long>(r->first_position),
                events.size() == 1 ? "" : "..", events.size() == 1 ? "" : std::to_string(r->last_position).c_str(),
                static_cast<unsigned long long>(r->last_version));
  } else {
    std::printf("%s %zu event%s to \"%s\": position%s %llu%s%s, version %llu\n",
                r->already_appended ? "already appended" : "appended", events.size(), events.size() == 1 ? "" : "s",
                a.stream.c_str(), events.size() == 1 ? "" : "s", static_cast<unsigned long long>(r->first_position),
                events.size() == 1 ? "" : "..", events.size() == 1 ? "" : std::to_string(r->last_position).c_str(),
                static_cast<unsigned long long>(r->last_version));
  }
  return 0;
}

struct ReadArgs {
  std::string stream, since;
  uint64_t from_version = 0;
  std::optional<uint64_t> from_position, last;
};

int Read(const GlobalOptions& g, const ReadArgs& a) {
  int modes = !a.stream.empty() + a.from_position.has_value() + !a.since.empty() + a.last.has_value();
  if (modes > 1) return Fail("choose one of --stream, --from-position, --since, --last; found " + std::to_string(modes));
  if (!a.stream.empty()) {
    if (Status st = CheckStreamOption(a.stream); !st.ok()) return Fail(st);
  }
  std::optional<int64_t> since;
  if (!a.since.empty()) {
    since = clock::ParseIso8601(a.since);
    if (!since) return Fail("--since: expected an ISO 8601 time like 2025-06-30T00:00:00Z, found '" + a.since + "'");
  }
  auto codec = JsonCodec::Create();
  if (!codec.ok()) return Fail(codec.status());
  auto s = OpenStore(g, false);
  if (!s.ok()) return Fail(s.status());
  std::string line;
  store::EventStore::Visitor print = [&](const store::EventView& v) {
    line = (*codec)->Decode(v).dump();
    line += '\n';
    return std::fwrite(line.data(), 1, line.size(), stdout) == line.size();
  };
  Status st;
  if (!a.stream.empty()) st = (*s)->ReadStream(a.stream, a.from_version, print);
  else if (since) st = (*s)->ReadSince(*since, print);
  else if (a.last) st = (*s)->ReadLast(*a.last, print);
  else st = (*s)->ReadAll(a.from_position.value_or(0), print);
  std::fflush(stdout);
  if (!st.ok()) return Fail(st);
  return 0;
}

int Verify(const GlobalOptions& g) {
  auto s = OpenStore(g, false);
  if (!s.ok()) return Fail(s.status());
  auto rep = (*s)->Verify();
  if (!rep.ok()) return Fail(rep.status());
  if (g.json) {
    nlohmann::json j{{"ok", rep->ok()},          {"frames", rep->frames},   {"events", rep->events},
                     {"streams", rep->streams},  {"rejected_frames", rep->rejected_frames},
                     {"padding_frames", rep->padding_frames}, {"damaged", rep->damaged}, {"problems", rep->problems}};
    std::cout << j.dump() << "\n";
  } else {
    std::printf("%s: %llu frames, %llu events in %llu streams, %llu rejected, %llu padding, %llu damaged\n",
                rep->ok() ? "ok" : "DAMAGED", static_cast<unsigned long long>(rep->frames),
                static_cast<unsigned long long>(rep->events), static_cast<unsigned long long>(rep->streams),
                static_cast<unsigned long long>(rep->rejected_frames), static_cast<unsigned long long>(rep->padding_frames),
                static_cast<unsigned long long>(rep->damaged));
    for (const auto& p : rep->problems) std::printf("  %s\n", p.c_str());
  }
  return rep->ok() ? 0 : 1;
}

int Stats(const GlobalOptions& g) {
  auto s = OpenStore(g, false);
  if (!s.ok()) return Fail(s.status());
  store::StoreStats st = (*s)->Stats();
  nlohmann::json j{{"store", g.store},
                   {"events", st.events},
                   {"streams", st.streams},
                   {"segments", st.segments},
                   {"bytes", st.bytes},
                   {"tail_position", st.tail_position},
                   {"resolved_position", st.resolved_position},
                   {"accepted_batches", st.accepted_frames},
                   {"rejected_batches", st.rejected_frames},
                   {"corrupt_frames", st.corrupt_frames},
                   {"padded_frames", st.padded_frames},
                   {"segment_size", st.segment_size},
                   {"stream_capacity", st.stream_capacity},
                   {"dedup_window", st.dedup_window},
                   {"resolver_repairs", st.repairs}};
  if (g.json) {
    std::cout << j.dump() << "\n";
  } else {
    for (auto& [k, v] : j.items()) std::cout << k << ": " << (v.is_string() ? v.get<std::string>() : v.dump()) << "\n";
  }
  return 0;
}

int Redact(const GlobalOptions& g, uint64_t position) {
  auto s = OpenStore(g, false);
  if (!s.ok()) return Fail(s.status());
  auto r = (*s)->Redact(position);
  if (!r.ok()) return Fail(r.status());
  const auto& e = r->event;
  if (g.json) {
    nlohmann::json j{{"position", e.position}, {"stream", std::string(e.stream)}, {"version", e.version},
                     {"event_id", e.id.ToString()}, {"payload_bytes", e.payload.size()},
                     {"already_redacted", r->already_redacted}};
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("%s event at position %llu (%s version %llu, %zu payload bytes zeroed)\n",
                r->already_redacted ? "already redacted:" : "redacted", static_cast<unsigned long long>(e.position),
                std::string(e.stream).c_str(), static_cast<unsigned long long>(e.version), e.payload.size());
  }
  return 0;
}

// "90", "90s", "15m", "12h", "7d" -> nanoseconds; nullopt when it is none of these.
std::optional<int64_t> ParseDuration(const std::string& text) {
  if (text.empty()) return std::nullopt;
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (...) {
    return std::nullopt;
  }
  const std::string unit = text.substr(used);
  const double scale = unit.empty() || unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : unit == "d" ? 86400 : -1;
  if (scale < 0 || v < 0) return std::nullopt;
  return static_cast<int64_t>(v * scale * 1e9);
}

struct MetaArgs {
  std::string stream, max_age;
  std::optional<uint64_t> max_count, truncate_before;
  bool hard = false;
};

nlohmann::json MetaJson(const std::string& stream, const store::StreamMetadata& m) {
  return {{"stream", stream},
          {"max_count", m.max_count},
          {"max_age_seconds", m.max_age_ns / 1e9},
          {"truncate_before", m.truncate_before == UINT64_MAX ? nlohmann::json("all") : nlohmann::json(m.truncate_before)},
          {"deleted", m.deleted},
          {"hard_deleted", m.hard_deleted}};
}

int StreamMeta(const GlobalOptions& g, const MetaArgs& a) {
  if (Status st = CheckStreamOption(a.stream); !st.ok()) return Fail(st);
  std::optional<int64_t> age;
  if (!a.max_age.empty()) {
    age = ParseDuration(a.max_age);
    if (!age) return Fail("--max-age: expected a duration such as 90s, 15m, 12h or 7d (0 for none); found '" + a.max_age + "'");
  }
  auto s = OpenStore(g, false);
  if (!s.ok()) return Fail(s.status());
  auto m = (*s)->GetStreamMetadata(a.stream);
  if (!m.ok()) return Fail(m.status());
  if (a.max_count || age || a.truncate_before) {
    if (a.max_count) m->max_count = *a.max_count;
    if (age) m->max_age_ns = *age;
    if (a.truncate_before) m->truncate_before = *a.truncate_before;
    if (Status st = (*s)->SetStreamMetadata(a.stream, *m); !st.ok()) return Fail(st);
  }
  nlohmann::json j = MetaJson(a.stream, *m);
  std::printf("%s\n", g.json ? j.dump().c_str() : j.dump(2).c_str());
  return 0;
}

int DeleteStream(const GlobalOptions& g, const MetaArgs& a) {
  if (Status st = CheckStreamOption(a.stream); !st.ok()) return Fail(st);
  auto s = OpenStore(g, false);
  if (!s.ok()) return Fail(s.status());
  if (Status st = (*s)->DeleteStream(a.stream, a.hard); !st.ok()) return Fail(st);
  auto m = (*s)->GetStreamMetadata(a.stream);
  if (!m.ok()) return Fail(m.status());
  if (g.json) std::printf("%s\n", MetaJson(a.stream, *m).dump().c_str());
  else std::printf("deleted \"%s\" (%s)\n", a.stream.c_str(),
                   a.hard ? "hard: it reads as empty and refuses appends for good"
                          : "soft: it reads as empty until appended to again");
  return 0;
}

int Types(const GlobalOptions& g) {
  nlohmann::json j = nlohmann::json::array();
  for (uint32_t t = 1; t <= handlers::EventTypeCount(); ++t) {
    if (g.json) j.push_back({{"type", t}, {"name", handlers::EventTypeName(t)}});
    else std::printf("%3u %s\n", t, handlers::EventTypeName(t));
  }
  if (g.json) std::cout << j.dump() << "\n";
  return 0;
}

}  // namespace

void AddStoreVerbs(CLI::App& app, GlobalOptions& g, int& rc) {
  auto pub = std::make_shared<PublishArgs>();
  auto* p = app.add_subcommand("publish", "append one event (--data) or a batch of JSON lines from stdin, atomically");
  p->add_option("--stream", pub->stream, "stream (aggregate) id, e.g. request-42")->required();
  p->add_option("--type", pub->type, "event type, e.g. RequestCreatedEvent");
  p->add_option("--expected-version", pub->expected, "N, any, no-stream or exists")->capture_default_str();
  p->add_option("--event-id", pub->event_id, "UUID (default: a new one)");
  p->add_option("--data", pub->data, "the event body as a JSON object");
  p->callback([&g, &rc, pub] { rc = Publish(g, *pub); });

  auto rd = std::make_shared<ReadArgs>();
  auto* r = app.add_subcommand("read", "print events as JSON lines");
  r->add_option("--stream", rd->stream, "one stream, in version order");
  r->add_option("--from-version", rd->from_version, "with --stream: first version");
  r->add_option("--from-position", rd->from_position, "everything from a global position");
  r->add_option("--since", rd->since, "everything that occurred at or after an ISO 8601 time");
  r->add_option("--last", rd->last, "the newest N events");
  r->callback([&g, &rc, rd] { rc = Read(g, *rd); });

  app.add_subcommand("verify", "check every frame, CRC and stream version; non-zero exit on damage")
      ->callback([&g, &rc] { rc = Verify(g); });
  app.add_subcommand("stats", "events, streams, segments, bytes, tail position")->callback([&g, &rc] { rc = Stats(g); });
  app.add_subcommand("types", "the event types of the catalogue")->callback([&g, &rc] { rc = Types(g); });
  auto ma = std::make_shared<MetaArgs>();
  auto* sm = app.add_subcommand("stream-meta", "show or set a stream's retention: max count, max age, truncate before");
  sm->add_option("--stream", ma->stream, "the stream")->required();
  sm->add_option("--max-count", ma->max_count, "keep the newest N events visible (0: no limit)");
  sm->add_option("--max-age", ma->max_age, "hide events older than this: 90s, 15m, 12h, 7d (0: no limit)");
  sm->add_option("--truncate-before", ma->truncate_before, "hide versions below this one");
  sm->callback([&g, &rc, ma] { rc = StreamMeta(g, *ma); });
  auto da = std::make_shared<MetaArgs>();
  auto* ds = app.add_subcommand("delete-stream", "delete a stream: soft (reads empty until written again) or --hard");
  ds->add_option("--stream", da->stream, "the stream")->required();
  ds->add_flag("--hard", da->hard, "for good: the stream refuses every append from now on");
  ds->callback([&g, &rc, da] { rc = DeleteStream(g, *da); });
  auto position = std::make_shared<uint64_t>(0);
  auto* red = app.add_subcommand("redact", "zero one event's payload in place (personal data), keeping its position");
  red->add_option("--position", *position, "the event's position (as `read` prints it)")->required();
  red->callback([&g, &rc, position] { rc = Redact(g, *position); });
}

}  // namespace hfe::tools
