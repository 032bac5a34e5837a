// DomainState: the Host Factory's domain folded from the log — every Request, Machine and Template aggregate
// and a count of the events of every type — and its snapshots.
//
//   auto state = DomainState::Rebuild(store, {.use_snapshot = true});   // newest valid snapshot + the tail
//   const aggregates::Request* r = state->FindRequest("request-42");
//   store::WriteSnapshot(store.dir(), state->position(), SnapshotSchemaHash(), state->Serialize());
//
// A state restored from a snapshot keeps the snapshot mapped as its base layer and materialises an
// aggregate only when an event of the tail touches it (or it is looked up), so a rebuild costs the tail,
// not the number of aggregates. Serialize() merges the base with what changed, sorted by id, so two states
// that folded the same events serialise to the same bytes.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "handlers/aggregates/machine.h"
#include "handlers/aggregates/request.h"
#include "handlers/aggregates/template.h"
#include "schemas/snapshot_generated.h"
#include "store/event_store.h"
#include "store/snapshot.h"

namespace hfe::handlers {

// The hash snapshots are written and checked with: the event schema and the snapshot schema.
uint64_t SnapshotSchemaHash();

struct RebuildOptions {
  bool use_snapshot = true;        // false: fold the whole log from position 0
  uint64_t until = UINT64_MAX;     // fold up to this position (exclusive); default: the resolved end
};

struct RebuildReport {
  uint64_t snapshot_position = 0;  // 0: no snapshot used
  std::string snapshot_path;
  uint64_t tail_events = 0;        // events folded after the snapshot
  int64_t load_ns = 0, fold_ns = 0;
  std::vector<std::string> warnings;  // snapshots skipped (damaged, another schema)
};

// Hashes std::string and std::string_view alike, so lookups by a stream name need no std::string.
struct NameHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <typename Agg>
using AggregateMap = std::unordered_map<std::string, Agg, NameHash, std::equal_to<>>;

class DomainState {
 public:
  DomainState() = default;
  DomainState(DomainState&&) = default;
  DomainState& operator=(DomainState&&) = default;

  // Newest valid snapshot (unless told not to) plus the log after it.
  static Result<DomainState> Rebuild(const store::EventStore& store, const RebuildOptions& o = {},
                                     RebuildReport* report = nullptr);
  // A state whose base is a snapshot file's payload (kept mapped); DataLoss when it does not verify.
  static Result<DomainState> FromSnapshot(std::unique_ptr<store::SnapshotFile> file);

  // Folds one stored event (every type is counted; request, machine and template events change their
  // aggregate). Events must come in log order, after position().
  void Apply(const store::EventView& v);
  // Folds the log from position() up to `until` (exclusive; default the resolved end); returns how many.
  Result<uint64_t> CatchUp(const store::EventStore& store, uint64_t until = UINT64_MAX);

  uint64_t position() const { return position_; }
  uint64_t events() const { return events_; }
  uint64_t count(uint32_t event_type) const;
  size_t requests() const;   // aggregates of each kind
  size_t machines() const;
  size_t templates() const;

  // The aggregate's state, or nullopt when the log has no such aggregate.
  std::optional<aggregates::Request> FindRequest(const std::string& id) const;
  std::optional<aggregates::Machine> FindMachine(const std::string& id) const;
  std::optional<aggregates::Template> FindTemplate(const std::string& id) const;

  // The DomainSnapshot payload of this state (canonical: sorted by id).
  std::vector<uint8_t> Serialize() const;

 private:
  std::shared_ptr<store::SnapshotFile> base_file_;
  const schema::DomainSnapshot* base_ = nullptr;
  AggregateMap<aggregates::Request> requests_;   // changed since the base, or new
  AggregateMap<aggregates::Machine> machines_;
  AggregateMap<aggregates::Template> templates_;
  std::vector<uint64_t> counts_ = std::vector<uint64_t>(256);
  uint64_t position_ = 0;
  uint64_t events_ = 0;
  size_t new_requests_ = 0, new_machines_ = 0, new_templates_ = 0;  // not in the base
};

// An aggregate loaded from the newest snapshot of `snapshot` (may be null: from the log alone) plus the
// events of its stream after it.
Result<aggregates::Request> LoadRequest(const store::EventStore& store, const DomainState* snapshot,
                                        const std::string& id);
Result<aggregates::Machine> LoadMachine(const store::EventStore& store, const DomainState* snapshot,
                                        const std::string& id);
Result<aggregates::Template> LoadTemplate(const store::EventStore& store, const DomainState* snapshot,
                                          const std::string& id);

}  // namespace hfe::handlers
