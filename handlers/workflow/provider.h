// SimulatedProvider: the command handler behind the command bus, standing in for a cloud provider. It
// provisions a request's machines after a random delay each, fails some of them at a chosen rate, and drives
// the Request and Machine aggregates through their lifecycles, so every event of a real run is produced:
//
//   StartProvisioning  request pending -> in_progress; its machines created (see MachineId); each
//                      provisioned (addresses, running) or failed after its delay; then the request completes
//                      (all machines), completes partially (some), or fails (none).
//   ConfirmRequest     checks that a completed request's machines run; reports a ProviderOperationExecuted.
//   CleanupRequest     terminates the machines of a failed/timed-out/cancelled request (of a partial one: the
//                      failed machines).
//   StartMonitoring    watches a machine; MarkMachineReady health-checks a running one ("healthy").
//   CleanupMachine     releases a terminated machine's instance (ResourcesCleaned) and stops watching it.
//
// Every command is idempotent: it looks at the aggregates' state in the log first, so a command delivered
// twice (a workflow handler redelivered after a crash, or a command the bus delivers again because the
// provider died while acting on it) does nothing the second time. Saves use the loaded version as the
// expectation; a conflict reloads and re-decides. Reconcile() rebuilds what was in flight after a crash of the
// provider: provisioning runs on timers after its command was taken, so requests left pending or in progress
// are provisioned again (machines that exist are continued, not created twice).
//
// Aggregates load from the newest snapshot the compactor wrote plus their stream's events after it.
//
// Provider events that belong to no aggregate (operation reports, cleaned resources) go to the stream
// "provider-<name>".
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "handlers/aggregates/machine.h"
#include "handlers/aggregates/request.h"
#include "schemas/commands_generated.h"
#include "store/event_store.h"

namespace hfe::handlers {

struct ProviderOptions {
  std::string name = "simulated";
  std::string instance_type = "m5.large";
  int64_t min_delay_us = 500;    // provisioning delay of one machine, uniform in [min, max]
  int64_t max_delay_us = 5000;
  double fail_rate = 0.0;        // share of machines whose provisioning fails
  uint64_t seed = 0;             // 0: from the kernel
  int conflict_retries = 8;      // reloads after a concurrency conflict before a command fails
};

struct ProviderStats {
  std::map<std::string, uint64_t> commands;  // by command type
  uint64_t rejected = 0;        // commands that failed (see last_error)
  uint64_t already_done = 0;    // commands whose work the log showed done already
  uint64_t conflicts = 0;       // saves retried after a concurrency conflict
  uint64_t requests_started = 0, requests_completed = 0, requests_partial = 0, requests_failed = 0;
  uint64_t machines_created = 0, machines_provisioned = 0, machines_failed = 0, machines_terminated = 0;
  uint64_t health_checks = 0, resources_cleaned = 0, confirmations = 0;
  uint64_t reconciled = 0;      // requests taken up again by Reconcile()
  std::string last_error;
};

class DomainState;

class SimulatedProvider {
 public:
  SimulatedProvider(store::EventStore& store, const ProviderOptions& o);
  ~SimulatedProvider();

  // Acts on one command. Errors name the command and what went wrong; the provider stays usable.
  Status Execute(const schema::Command& c);
  // Settles every machine whose delay has passed by `now_ns` (monotonic clock).
  Status Tick(int64_t now_ns);
  // When the next machine is due (monotonic ns); INT64_MAX when none is.
  int64_t NextDueNs() const;
  size_t requests_in_flight() const { return inflight_.size(); }
  size_t monitored() const { return monitored_.size(); }
  // Takes up requests the log shows pending or in progress that are not in flight here; returns how many.
  Result<size_t> Reconcile();
  const ProviderStats& stats() const { return stats_; }

  // The id of a request's k-th machine: "machine-<request id without its 'request-' prefix>-<k>".
  static std::string MachineId(const std::string& request_id, int k);

 private:
  struct Work {
    std::optional<aggregates::Request> request;
    std::vector<aggregates::Machine> machines;
    int unsettled = 0;
    store::EventId correlation;
  };
  struct Due {
    int64_t at;
    std::string request_id;
    int machine;
    bool operator>(const Due& o) const { return at > o.at; }
  };

  Status StartProvisioning(const std::string& request_id, const store::EventId& correlation);
  Status SettleMachine(Work& w, int k);
  Status FinishRequest(const std::string& request_id, Work& w);
  Status ConfirmRequest(const std::string& request_id, const store::EventId& correlation);
  Status CleanupRequest(const std::string& request_id, const std::string& reason, const store::EventId& correlation);
  Status MarkReady(const std::string& machine_id, const store::EventId& correlation);
  Status CleanupMachine(const std::string& machine_id, const std::string& reason, const store::EventId& correlation);
  // Appends to the provider's stream; false when the event id was stored before (a repeated command).
  Result<bool> AppendProviderEvent(schema::EventBody type, flatbuffers::FlatBufferBuilder& b,
                                   flatbuffers::Offset<void> body, const store::EventId& correlation,
                                   const store::EventId& id);
  // Applies `change` and saves; on a concurrency conflict reloads the aggregate and applies it again.
  template <typename Agg, typename Change>
  Status Mutate(Agg& agg, const store::EventId& correlation, Change change);
  // The newest snapshot (checked every few seconds), or null: aggregates load from it plus their tail.
  const DomainState* Snapshot();

  store::EventStore& store_;
  ProviderOptions o_;
  std::mt19937_64 rng_;
  std::unordered_map<std::string, Work> inflight_;
  std::priority_queue<Due, std::vector<Due>, std::greater<Due>> due_;
  std::unordered_set<std::string> monitored_;
  ProviderStats stats_;
  std::string stream_;
  std::unique_ptr<DomainState> snapshot_;
  int64_t snapshot_checked_ns_ = INT64_MIN / 2;
};

}  // namespace hfe::handlers
