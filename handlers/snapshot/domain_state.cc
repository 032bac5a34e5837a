// DomainState: folding events into aggregates, snapshot base + overlay, canonical serialisation.
#include "handlers/snapshot/domain_state.h"

#include <algorithm>

#include "handlers/envelope.h"
#include "ipc/clock.h"
#include "schemas/events_schema_text.h"

namespace hfe::handlers {

namespace fb = flatbuffers;
using aggregates::Machine;
using aggregates::Request;
using aggregates::Template;
using schema::EventBody;

namespace {

uint64_t Fnv(std::string_view s, uint64_t h) {
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

enum class Kind { kRequest, kMachine, kTemplate, kOther };
Kind KindOf(uint32_t type) {
  if (type >= static_cast<uint32_t>(EventBody::RequestCreatedEvent) &&
      type <= static_cast<uint32_t>(EventBody::RequestTimeoutEvent)) {
    return Kind::kRequest;
  }
  if (type >= static_cast<uint32_t>(EventBody::MachineCreatedEvent) &&
      type <= static_cast<uint32_t>(EventBody::MachineHealthCheckEvent)) {
    return Kind::kMachine;
  }
  if (type >= static_cast<uint32_t>(EventBody::TemplateCreatedEvent) &&
      type <= static_cast<uint32_t>(EventBody::TemplateDeletedEvent)) {
    return Kind::kTemplate;
  }
  return Kind::kOther;
}

// The base layer's entry for `id`, or null.
template <typename State>
const State* InBase(const fb::Vector<fb::Offset<State>>* v, const std::string& id) {
  return v ? v->LookupByKey(id.c_str()) : nullptr;
}

// Merges the base vector (sorted by id) with the overlay (changed or new), both in id order, into `b`.
template <typename Agg, typename State>
std::vector<fb::Offset<State>> Merge(fb::FlatBufferBuilder& b, const fb::Vector<fb::Offset<State>>* base,
                                     const AggregateMap<Agg>& overlay) {
  std::vector<const typename AggregateMap<Agg>::value_type*> entries;
  entries.reserve(overlay.size());
  for (const auto& e : overlay) entries.push_back(&e);
  std::sort(entries.begin(), entries.end(), [](const auto* x, const auto* y) { return x->first < y->first; });
  std::vector<fb::Offset<State>> out;
  out.reserve((base ? base->size() : 0) + entries.size());
  size_t k = 0;
  const uint32_t n = base ? base->size() : 0;
  for (uint32_t i = 0; i < n || k < entries.size();) {
    const State* s = i < n ? base->Get(i) : nullptr;
    if (s && (k == entries.size() || s->id()->string_view() < std::string_view(entries[k]->first))) {
      out.push_back(Agg::FromState(*s).ToState(b));  // unchanged since the base
      ++i;
      continue;
    }
    if (s && s->id()->string_view() == std::string_view(entries[k]->first)) ++i;  // the overlay replaces it
    out.push_back(entries[k]->second.ToState(b));
    ++k;
  }
  return out;
}

// The overlay entry for `id`, materialised from the base or blank when absent.
template <typename Agg, typename State>
Agg& Touch(AggregateMap<Agg>& overlay, const fb::Vector<fb::Offset<State>>* base, std::string_view stream,
           size_t* added) {
  auto it = overlay.find(stream);  // no std::string for the lookup
  if (it != overlay.end()) return it->second;
  std::string id(stream);
  if (const State* s = InBase(base, id)) return overlay.emplace(id, Agg::FromState(*s)).first->second;
  ++*added;
  return overlay.emplace(id, Agg::Blank(id)).first->second;
}

template <typename Agg, typename State>
std::optional<Agg> Find(const AggregateMap<Agg>& overlay, const fb::Vector<fb::Offset<State>>* base,
                        const std::string& id) {
  auto it = overlay.find(id);
  if (it != overlay.end()) return it->second;
  if (const State* s = InBase(base, id)) return Agg::FromState(*s);
  return std::nullopt;
}

}  // namespace

uint64_t SnapshotSchemaHash() {
  static const uint64_t h = Fnv(schema::kSnapshotSchemaText, Fnv(schema::kEventsSchemaText, 0xcbf29ce484222325ull));
  return h;
}

Result<DomainState> DomainState::FromSnapshot(std::unique_ptr<store::SnapshotFile> file) {
  auto payload = file->payload();
  fb::Verifier::Options vo;
  vo.max_tables = 0xffffffffu;  // a snapshot holds millions of tables
  vo.max_depth = 64;
  fb::Verifier v(payload.data(), payload.size(), vo);
  if (!schema::VerifyDomainSnapshotBuffer(v)) {
    return DataLoss("snapshot '" + file->path() + "' does not verify as a DomainSnapshot");
  }
  DomainState s;
  s.base_ = schema::GetDomainSnapshot(payload.data());
  if (s.base_->position() != file->position()) {
    return DataLoss("snapshot '" + file->path() + "' says position " + std::to_string(s.base_->position()) +
                    " inside, " + std::to_string(file->position()) + " in its header");
  }
  s.position_ = s.base_->position();
  s.events_ = s.base_->events();
  if (s.base_->counts()) {
    for (const auto* c : *s.base_->counts()) {
      if (c->event_type() < s.counts_.size()) s.counts_[c->event_type()] = c->count();
    }
  }
  s.base_file_ = std::move(file);
  return s;
}

void DomainState::Apply(const store::EventView& v) {
  position_ = v.position + 1;
  ++events_;
  if (v.type < counts_.size()) ++counts_[v.type];
  const Kind kind = KindOf(v.type);
  if (kind == Kind::kOther) return;
  const schema::Envelope* e = VerifiedEnvelope(v.payload);
  if (!e) return;  // redacted or damaged payloads change no state (they are still counted)
  switch (kind) {
    case Kind::kRequest:
      Touch(requests_, base_ ? base_->requests() : nullptr, v.stream, &new_requests_).ApplyStored(*e, v.version);
      break;
    case Kind::kMachine:
      Touch(machines_, base_ ? base_->machines() : nullptr, v.stream, &new_machines_).ApplyStored(*e, v.version);
      break;
    case Kind::kTemplate:
      Touch(templates_, base_ ? base_->templates() : nullptr, v.stream, &new_templates_).ApplyStored(*e, v.version);
      break;
    case Kind::kOther:
      break;
  }
}

Result<uint64_t> DomainState::CatchUp(const store::EventStore& store, uint64_t until) {
  uint64_t n = 0;
  Status st = store.ReadAll(position_, [&](const store::EventView& v) {
    if (v.position >= until) return false;
    Apply(v);
    ++n;
    return true;
  });
  if (!st.ok()) return st;
  return n;
}

uint64_t DomainState::count(uint32_t event_type) const {
  return event_type < counts_.size() ? counts_[event_type] : 0;
}
size_t DomainState::requests() const { return (base_ && base_->requests() ? base_->requests()->size() : 0) + new_requests_; }
size_t DomainState::machines() const { return (base_ && base_->machines() ? base_->machines()->size() : 0) + new_machines_; }
size_t DomainState::templates() const {
  return (base_ && base_->templates() ? base_->templates()->size() : 0) + new_templates_;
}

std::optional<Request> DomainState::FindRequest(const std::string& id) const {
  return Find(requests_, base_ ? base_->requests() : nullptr, id);
}
std::optional<Machine> DomainState::FindMachine(const std::string& id) const {
  return Find(machines_, base_ ? base_->machines() : nullptr, id);
}
std::optional<Template> DomainState::FindTemplate(const std::string& id) const {
  return Find(templates_, base_ ? base_->templates() : nullptr, id);
}

std::vector<uint8_t> DomainState::Serialize() const {
  fb::FlatBufferBuilder b(1 << 20);
  auto requests = Merge(b, base_ ? base_->requests() : nullptr, requests_);
  auto machines = Merge(b, base_ ? base_->machines() : nullptr, machines_);
  auto templates = Merge(b, base_ ? base_->templates() : nullptr, templates_);
  std::vector<fb::Offset<schema::TypeCount>> counts;
  for (uint32_t t = 0; t < counts_.size(); ++t) {
    if (counts_[t]) counts.push_back(schema::CreateTypeCount(b, t, counts_[t]));
  }
  // The vectors are already in key order; CreateVector keeps it (LookupByKey relies on it).
  auto root = schema::CreateDomainSnapshot(b, position_, events_, b.CreateVector(requests), b.CreateVector(machines),
                                           b.CreateVector(templates), b.CreateVector(counts));
  b.Finish(root);
  return {b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()};
}

Result<DomainState> DomainState::Rebuild(const store::EventStore& store, const RebuildOptions& o, RebuildReport* report) {
  RebuildReport local;
  RebuildReport& r = report ? *report : local;
  const int64_t t0 = clock::MonotonicNanos();
  DomainState state;
  if (o.use_snapshot) {
    auto file = store::SnapshotFile::NewestValid(store.dir(), SnapshotSchemaHash(), &r.warnings);
    if (!file.ok()) return file.status();
    if (*file && (*file)->position() > o.until) {  // a snapshot past the point asked for cannot be used
      r.warnings.push_back("snapshot '" + (*file)->path() + "' is past position " + std::to_string(o.until) + "; not used");
      *file = nullptr;
    }
    if (*file) {
      const std::string path = (*file)->path();
      auto s = FromSnapshot(std::move(*file));
      if (s.ok()) {
        r.snapshot_position = s->position();
        r.snapshot_path = path;
        state = std::move(*s);
      } else {
        r.warnings.push_back(s.status().message() + "; ignored, folding the log from position 0");
      }
    }
  }
  const int64_t t1 = clock::MonotonicNanos();
  auto n = state.CatchUp(store, o.until);
  if (!n.ok()) return n.status();
  r.tail_events = *n;
  r.load_ns = t1 - t0;
  r.fold_ns = clock::MonotonicNanos() - t1;
  return state;
}

template <typename Agg>
static Result<Agg> LoadAggregate(const store::EventStore& store, std::optional<Agg> from, const std::string& id) {
  Agg a = from ? std::move(*from) : Agg::Blank(id);
  HFE_RETURN_IF_ERROR(a.CatchUp(store));
  return a;
}

Result<Request> LoadRequest(const store::EventStore& store, const DomainState* snap, const std::string& id) {
  return LoadAggregate<Request>(store, snap ? snap->FindRequest(id) : std::nullopt, id);
}
Result<Machine> LoadMachine(const store::EventStore& store, const DomainState* snap, const std::string& id) {
  return LoadAggregate<Machine>(store, snap ? snap->FindMachine(id) : std::nullopt, id);
}
Result<Template> LoadTemplate(const store::EventStore& store, const DomainState* snap, const std::string& id) {
  return LoadAggregate<Template>(store, snap ? snap->FindTemplate(id) : std::nullopt, id);
}

}  // namespace hfe::handlers
