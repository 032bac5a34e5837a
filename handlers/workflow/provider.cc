// SimulatedProvider: commands in, aggregate transitions out.
#include "handlers/workflow/provider.h"

#include <functional>

#include "handlers/envelope.h"
#include "handlers/snapshot/domain_state.h"
#include "handlers/workflow/command_bus.h"
#include "ipc/clock.h"

namespace hfe::handlers {

namespace fb = flatbuffers;
using aggregates::Machine;
using aggregates::MachineStatus;
using aggregates::Request;
using aggregates::RequestStatus;
using schema::CommandBody;

namespace {

bool Conflict(const Status& s) { return s.code() == StatusCode::kWrongExpectedVersion; }
bool Open(RequestStatus s) { return s == RequestStatus::kPending || s == RequestStatus::kInProgress; }
std::string Str(const fb::String* s) { return s ? s->str() : std::string(); }
store::EventId Id(const schema::Uuid* u) { return u ? store::EventId{u->hi(), u->lo()} : store::EventId{}; }

uint64_t Seed(uint64_t s) { return s ? s : store::EventId::Random().lo; }

// A stable event id for an operation that must be recorded once, however often its command arrives: the
// store's idempotency then drops the repeats.
store::EventId StableId(std::string_view what, std::string_view subject) {
  auto fnv = [](std::string_view a, std::string_view b, uint64_t h) {
    for (std::string_view s : {a, std::string_view("\0", 1), b}) {
      for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
    }
    return h;
  };
  return {fnv(what, subject, 0xcbf29ce484222325ull), fnv(what, subject, 0x84222325cbf29ce4ull)};
}

}  // namespace

std::string SimulatedProvider::MachineId(const std::string& request_id, int k) {
  std::string_view base(request_id);
  if (base.starts_with("request-")) base.remove_prefix(8);
  return "machine-" + std::string(base) + "-" + std::to_string(k);
}

SimulatedProvider::SimulatedProvider(store::EventStore& store, const ProviderOptions& o)
    : store_(store), o_(o), rng_(Seed(o.seed)), stream_("provider-" + o.name) {}

SimulatedProvider::~SimulatedProvider() = default;

const DomainState* SimulatedProvider::Snapshot() {
  // Aggregates load from the newest snapshot plus their stream's tail; a newer snapshot is picked up within
  // a few seconds of the compactor writing it.
  const int64_t now = clock::MonotonicNanos();
  if (now - snapshot_checked_ns_ < 5'000'000'000) return snapshot_.get();
  snapshot_checked_ns_ = now;
  auto list = store::ListSnapshots(store_.dir());
  if (!list.ok() || list->empty() || (snapshot_ && list->front().position == snapshot_->position())) {
    return snapshot_.get();
  }
  auto file = store::SnapshotFile::NewestValid(store_.dir(), SnapshotSchemaHash(), nullptr);
  if (file.ok() && *file) {
    auto state = DomainState::FromSnapshot(std::move(*file));
    if (state.ok()) snapshot_ = std::make_unique<DomainState>(std::move(*state));
  }
  return snapshot_.get();
}

template <typename Agg, typename Change>
Status SimulatedProvider::Mutate(Agg& agg, const store::EventId& correlation, Change change) {
  for (int attempt = 0;; ++attempt) {
    agg.CorrelateWith(correlation);
    HFE_RETURN_IF_ERROR(change(agg));
    Status st = agg.Save(store_);
    if (st.ok() || !Conflict(st) || attempt >= o_.conflict_retries) return st;
    ++stats_.conflicts;
    auto fresh = Agg::Load(store_, agg.id());
    if (!fresh.ok()) return fresh.status();
    agg = std::move(*fresh);
  }
}

Status SimulatedProvider::Execute(const schema::Command& c) {
  const CommandBody type = c.body_type();
  ++stats_.commands[CommandTypeName(type)];
  const store::EventId corr = Id(c.correlation_id());
  Status st;
  switch (type) {
    case CommandBody::StartProvisioningCommand:
      st = StartProvisioning(Str(c.body_as_StartProvisioningCommand()->request_id()), corr);
      break;
    case CommandBody::ConfirmRequestCommand:
      st = ConfirmRequest(Str(c.body_as_ConfirmRequestCommand()->request_id()), corr);
      break;
    case CommandBody::CleanupRequestCommand: {
      auto* b = c.body_as_CleanupRequestCommand();
      st = CleanupRequest(Str(b->request_id()), Str(b->reason()), corr);
      break;
    }
    case CommandBody::StartMonitoringCommand: {
      std::string id = Str(c.body_as_StartMonitoringCommand()->machine_id());
      if (id.empty()) {
        st = InvalidArgument("StartMonitoringCommand without a machine id");
      } else if (!monitored_.insert(id).second) {
        ++stats_.already_done;
      }
      break;
    }
    case CommandBody::MarkMachineReadyCommand:
      st = MarkReady(Str(c.body_as_MarkMachineReadyCommand()->machine_id()), corr);
      break;
    case CommandBody::CleanupMachineCommand: {
      auto* b = c.body_as_CleanupMachineCommand();
      st = CleanupMachine(Str(b->machine_id()), Str(b->reason()), corr);
      break;
    }
    default:
      st = InvalidArgument("unknown command type " + std::to_string(static_cast<int>(type)) +
                           " (a newer workflow handler?); update the provider");
  }
  if (!st.ok()) {
    ++stats_.rejected;
    stats_.last_error = std::string(CommandTypeName(type)) + ": " + st.message();
  }
  return st;
}

Status SimulatedProvider::StartProvisioning(const std::string& request_id, const store::EventId& correlation) {
  if (request_id.empty()) return InvalidArgument("StartProvisioningCommand without a request id");
  if (inflight_.count(request_id)) {
    ++stats_.already_done;  // a second delivery while the first is being provisioned
    return Status::Ok();
  }
  auto loaded = LoadRequest(store_, Snapshot(), request_id);
  if (!loaded.ok()) return loaded.status();
  if (!Open(loaded->status())) {
    ++stats_.already_done;
    return Status::Ok();
  }
  Work w;
  w.correlation = correlation;
  w.request.emplace(std::move(*loaded));
  if (w.request->status() == RequestStatus::kPending) {
    HFE_RETURN_IF_ERROR(Mutate(*w.request, correlation, [](Request& r) -> Status {
      return r.status() == RequestStatus::kPending ? r.StartProvisioning() : Status::Ok();
    }));
    if (!Open(w.request->status())) return Status::Ok();  // another process finished it meanwhile
    ++stats_.requests_started;
  }
  const int64_t now = clock::MonotonicNanos();
  std::uniform_int_distribution<int64_t> delay(o_.min_delay_us, std::max(o_.min_delay_us, o_.max_delay_us));
  for (int k = 0; k < w.request->machine_count(); ++k) {
    const std::string mid = MachineId(request_id, k);
    auto m = LoadMachine(store_, Snapshot(), mid);
    if (m.status().code() == StatusCode::kNotFound) {
      auto created = Machine::Create(mid, w.request->template_id(), request_id, o_.instance_type, "zone-a");
      if (!created.ok()) return created.status();
      created->CorrelateWith(correlation);
      Status st = created->Save(store_);
      if (st.ok()) {
        ++stats_.machines_created;
        m = std::move(*created);
      } else if (Conflict(st)) {
        m = LoadMachine(store_, Snapshot(), mid);  // created by an earlier delivery that died before recording it
      } else {
        return st;
      }
    }
    if (!m.ok()) return m.status();
    w.machines.push_back(std::move(*m));
    if (w.machines.back().status() == MachineStatus::kPending) {
      ++w.unsettled;
      due_.push({now + delay(rng_) * 1000, request_id, k});
    }
  }
  auto [it, inserted] = inflight_.emplace(request_id, std::move(w));
  if (it->second.unsettled == 0) return FinishRequest(request_id, it->second);
  return Status::Ok();
}

Status SimulatedProvider::SettleMachine(Work& w, int k) {
  Machine& m = w.machines[static_cast<size_t>(k)];
  if (m.status() != MachineStatus::kPending) return Status::Ok();
  const bool fail = std::uniform_real_distribution<double>(0, 1)(rng_) < o_.fail_rate;
  if (fail) {
    HFE_RETURN_IF_ERROR(Mutate(m, w.correlation, [](Machine& x) -> Status {
      return x.status() == MachineStatus::kPending ? x.ChangeStatus(MachineStatus::kFailed, "provider could not place the instance")
                                                   : Status::Ok();
    }));
    ++stats_.machines_failed;
  } else {
    const uint64_t n = rng_();
    const std::string instance = "i-" + std::to_string(n % 1'000'000'000'000ull);
    const std::string ip = "10." + std::to_string(n >> 56 & 255) + "." + std::to_string(n >> 48 & 255) + "." +
                           std::to_string(1 + (n >> 40 & 253));
    HFE_RETURN_IF_ERROR(Mutate(m, w.correlation, [&](Machine& x) -> Status {
      return x.status() == MachineStatus::kPending ? x.Provision(instance, ip, "") : Status::Ok();
    }));
    ++stats_.machines_provisioned;
  }
  return Status::Ok();
}

Status SimulatedProvider::FinishRequest(const std::string& request_id, Work& w) {
  std::vector<std::string> running;
  for (const auto& m : w.machines) {
    if (m.status() == MachineStatus::kRunning) running.push_back(m.id());
  }
  const bool none = running.empty();
  const bool partial = !none && static_cast<int>(running.size()) < w.request->machine_count();
  Status st = Mutate(*w.request, w.correlation, [&](Request& r) -> Status {
    if (!Open(r.status())) return Status::Ok();  // cancelled or timed out meanwhile
    if (r.status() == RequestStatus::kPending) HFE_RETURN_IF_ERROR(r.StartProvisioning());
    if (none) return r.Fail("no machine could be provisioned", "InsufficientCapacity", "provider could not place any instance");
    return r.Complete(running);
  });
  if (st.ok()) {
    if (none) ++stats_.requests_failed;
    else if (partial) ++stats_.requests_partial;
    else ++stats_.requests_completed;
  }
  inflight_.erase(request_id);
  return st;
}

Status SimulatedProvider::Tick(int64_t now_ns) {
  Status first;
  while (!due_.empty() && due_.top().at <= now_ns) {
    Due d = due_.top();
    due_.pop();
    auto it = inflight_.find(d.request_id);
    if (it == inflight_.end()) continue;
    Work& w = it->second;
    Status st = SettleMachine(w, d.machine);
    --w.unsettled;
    if (st.ok() && w.unsettled == 0) st = FinishRequest(d.request_id, w);
    if (!st.ok()) {
      ++stats_.rejected;
      stats_.last_error = "provisioning " + d.request_id + ": " + st.message();
      if (first.ok()) first = st;
      // The request stays open in the log; Reconcile() or a redelivered command takes it up again.
      inflight_.erase(d.request_id);
    }
  }
  return first;
}

int64_t SimulatedProvider::NextDueNs() const { return due_.empty() ? INT64_MAX : due_.top().at; }

Status SimulatedProvider::ConfirmRequest(const std::string& request_id, const store::EventId& correlation) {
  auto r = LoadRequest(store_, Snapshot(), request_id);
  if (!r.ok()) return r.status();
  if (r->status() != RequestStatus::kCompleted && r->status() != RequestStatus::kPartial) {
    return FailedPrecondition("request \"" + request_id + "\" is " + aggregates::RequestStatusName(r->status()) +
                              ", not completed; nothing to confirm");
  }
  const int64_t t0 = clock::MonotonicNanos();
  std::string not_running;
  for (const auto& id : r->machine_ids()) {
    auto m = LoadMachine(store_, Snapshot(), id);
    if (!m.ok() || m->status() != MachineStatus::kRunning) not_running += (not_running.empty() ? "" : ",") + id;
  }
  fb::FlatBufferBuilder b;
  const double ms = static_cast<double>(clock::MonotonicNanos() - t0) / 1e6;
  auto body = schema::CreateProviderOperationExecutedEventDirect(
      b, "confirm_request", o_.name.c_str(), not_running.empty(), ms,
      not_running.empty() ? "" : ("machines not running: " + not_running).c_str());
  auto fresh = AppendProviderEvent(schema::EventBody::ProviderOperationExecutedEvent, b, body.Union(), correlation,
                                   StableId("confirm", request_id));
  if (!fresh.ok()) return fresh.status();
  ++(*fresh ? stats_.confirmations : stats_.already_done);
  return Status::Ok();
}

Status SimulatedProvider::CleanupRequest(const std::string& request_id, const std::string& reason,
                                         const store::EventId& correlation) {
  auto r = LoadRequest(store_, Snapshot(), request_id);
  if (!r.ok()) return r.status();
  if (Open(r->status())) {
    return FailedPrecondition("request \"" + request_id + "\" is still " + aggregates::RequestStatusName(r->status()) +
                              "; clean up after it ends");
  }
  const bool all = r->status() != RequestStatus::kCompleted && r->status() != RequestStatus::kPartial;
  bool did = false;
  for (int k = 0; k < r->machine_count(); ++k) {
    auto m = LoadMachine(store_, Snapshot(), MachineId(request_id, k));
    if (m.status().code() == StatusCode::kNotFound) continue;  // never created
    if (!m.ok()) return m.status();
    if (m->status() == MachineStatus::kTerminated) continue;
    if (!all && m->status() != MachineStatus::kFailed) continue;  // partial: keep the running ones
    HFE_RETURN_IF_ERROR(Mutate(*m, correlation, [&](Machine& x) -> Status {
      return x.status() == MachineStatus::kTerminated ? Status::Ok() : x.Terminate(reason);
    }));
    ++stats_.machines_terminated;
    did = true;
  }
  if (!did) ++stats_.already_done;
  return Status::Ok();
}

Status SimulatedProvider::MarkReady(const std::string& machine_id, const store::EventId& correlation) {
  auto m = LoadMachine(store_, Snapshot(), machine_id);
  if (!m.ok()) return m.status();
  if (m->status() != MachineStatus::kRunning || m->health() == "healthy") {
    ++stats_.already_done;  // no longer running, or already reported ready
    return Status::Ok();
  }
  const bool watched = monitored_.count(machine_id) != 0;
  HFE_RETURN_IF_ERROR(Mutate(*m, correlation, [&](Machine& x) -> Status {
    if (x.status() != MachineStatus::kRunning || x.health() == "healthy") return Status::Ok();
    return x.HealthCheck("healthy", {{"ready", "true"}, {"monitored", watched ? "true" : "false"},
                                     {"private_ip", x.private_ip()}});
  }));
  ++stats_.health_checks;
  return Status::Ok();
}

Status SimulatedProvider::CleanupMachine(const std::string& machine_id, const std::string& reason,
                                         const store::EventId& correlation) {
  auto m = LoadMachine(store_, Snapshot(), machine_id);
  if (!m.ok()) return m.status();
  if (m->status() != MachineStatus::kTerminated) {
    return FailedPrecondition("machine \"" + machine_id + "\" is " + aggregates::MachineStatusName(m->status()) +
                              ", not terminated; terminate it before cleaning up");
  }
  monitored_.erase(machine_id);
  fb::FlatBufferBuilder b;
  const std::string resource = m->instance_id().empty() ? machine_id : m->instance_id();
  auto body = schema::CreateResourcesCleanedEventDirect(b, o_.name.c_str(), "local", "instance", resource.c_str(), 1,
                                                        reason.c_str());
  // One cleanup per machine, whatever the deliveries: the event id is derived from the machine id.
  auto fresh = AppendProviderEvent(schema::EventBody::ResourcesCleanedEvent, b, body.Union(), correlation,
                                   StableId("cleanup", machine_id));
  if (!fresh.ok()) return fresh.status();
  ++(*fresh ? stats_.resources_cleaned : stats_.already_done);
  return Status::Ok();
}

Result<bool> SimulatedProvider::AppendProviderEvent(schema::EventBody type, fb::FlatBufferBuilder& b, fb::Offset<void> body,
                                              const store::EventId& correlation, const store::EventId& id) {
  EnvelopeMeta meta;
  meta.event_id = id;
  meta.stream_id = stream_;
  meta.stream_type = "provider";
  meta.occurred_at_ns = clock::WallNanos();
  meta.correlation_id = correlation;
  store::EventData d;
  FinishEnvelope(b, meta, type, body, &d);
  auto r = store_.Append(stream_, store::ExpectedVersion::Any(), {&d, 1});
  if (!r.ok()) return r.status();
  return !r->already_appended;
}

Result<size_t> SimulatedProvider::Reconcile() {
  // Fold the request events of the whole log: which requests are still open.
  std::unordered_map<std::string, store::EventId> open;
  Status st = store_.ReadAll(0, [&](const store::EventView& v) {
    if (v.type < static_cast<uint32_t>(schema::EventBody::RequestCreatedEvent) ||
        v.type > static_cast<uint32_t>(schema::EventBody::RequestTimeoutEvent)) {
      return true;  // header filter: no decode for other families
    }
    const schema::Envelope* e = VerifiedEnvelope(v.payload);
    if (!e) return true;
    std::string id(v.stream);
    switch (e->body_type()) {
      case schema::EventBody::RequestCreatedEvent:
        if (e->body_as_RequestCreatedEvent()->request_type() == schema::RequestType::Provision) {
          open[id] = Id(e->correlation_id());
        }
        break;
      case schema::EventBody::RequestStatusChangedEvent: {
        std::string to = Str(e->body_as_RequestStatusChangedEvent()->new_status());
        if (to != "pending" && to != "in_progress") open.erase(id);
        break;
      }
      default:
        open.erase(id);  // completed, failed, timed out
    }
    return true;
  });
  HFE_RETURN_IF_ERROR(st);
  size_t taken = 0;
  for (const auto& [id, corr] : open) {
    if (inflight_.count(id)) continue;
    Status s = StartProvisioning(id, corr);
    if (!s.ok()) {
      ++stats_.rejected;
      stats_.last_error = "reconcile " + id + ": " + s.message();
      continue;
    }
    ++taken;
  }
  stats_.reconciled += taken;
  return taken;
}

}  // namespace hfe::handlers
