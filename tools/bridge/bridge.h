// The Kafka bridge: `hostfactory bridge export` publishes a durable subscription's events to a Kafka topic;
// `hostfactory bridge import` appends a topic's records into a local store through a consumer group.
//
//   export: subscription (cursor in the store) --Poll--> idempotent producer (key = stream) --ack--> cursor
//   import: consumer group --record--> Append(stream, exact version - 1, event id) --returned--> commit offset
//
// Guarantees: at-least-once into Kafka (the cursor advances only through the contiguous prefix of events the
// brokers acknowledged; a crash redelivers the rest), per-stream order within a partition (records are keyed
// by stream and the idempotent producer keeps order across retries), and exactly-once into the importing store
// (dedup by event id, each event placed at exactly the version it had, offsets committed after the append).
// Local producers never wait for the bridge: a slow or dead broker only grows the subscription's lag.
//
// Each run keeps a stats file (JSON) and a Prometheus text file beside it, by default in
// <store>/bridge/<export|import>.<name>.{json,prom}; `hostfactory debug-events --store-health` lists them.
#pragma once

#include <csignal>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ipc/status.h"
#include "store/event_store.h"

namespace hfe::bridge {

struct CommonOptions {
  std::string brokers;                  // bootstrap.servers
  std::string topic;
  std::vector<std::string> properties;  // -X key=value, applied after the bridge's own defaults
  int64_t idle_exit_ms = 0;             // exit once idle (caught up, everything acknowledged) this long; 0: never
  std::string stats_file;               // JSON stats; the Prometheus text goes to the same path with .prom
  int64_t stats_interval_ms = 1000;
  const volatile std::sig_atomic_t* stop = nullptr;  // set by a signal handler: finish what is in flight, exit
};

struct ExportOptions : CommonOptions {
  std::string subscription;             // durable subscription name (created on first use, from the beginning)
  std::vector<uint32_t> types;          // empty: all
  std::string stream_prefix;            // empty: all user streams
  size_t batch_size = 1000;             // events read from the subscription per poll; batch.num.messages
  int linger_ms = 5;                    // linger.ms
  size_t max_in_flight = 100000;        // events produced but not yet acknowledged, at most
  int64_t retry_backoff_ms = 1000;      // after a failed delivery, wait this long before producing again
  // Called in log order for each event once the brokers acknowledged it (benchmarks measure lag with it).
  std::function<void(uint64_t position, int64_t occurred_at_ns)> on_acked;
};

struct ExportReport {
  uint64_t produced = 0;         // records handed to the producer (redeliveries included)
  uint64_t acked = 0;            // events acknowledged by the brokers and passed by the cursor
  uint64_t delivery_errors = 0;  // records that failed after the producer's own retries
  uint64_t rewinds = 0;          // times the bridge went back to the cursor to produce again
};

struct ImportOptions : CommonOptions {
  std::string group;             // group.id
  int64_t commit_interval_ms = 200;
  size_t commit_every = 1000;    // commit after this many applied records even within the interval
};

struct ImportReport {
  uint64_t consumed = 0;    // records read
  uint64_t appended = 0;    // appended to the local store
  uint64_t duplicates = 0;  // already in the store (a redelivery): counted as done
  uint64_t parked = 0;      // poison records parked with their error
  uint64_t commits = 0;     // offset commits
};

// Validates `o` and the -X properties without connecting or touching a store: InvalidArgument with a
// one-line reason (what was expected, what was found, what to do).
Status CheckExportOptions(const ExportOptions& o);
Status CheckImportOptions(const ImportOptions& o);

// Runs until stopped, idle past idle_exit_ms, or a failure that retrying cannot cure.
Result<ExportReport> RunExport(store::EventStore& store, const ExportOptions& o);
Result<ImportReport> RunImport(store::EventStore& store, const ImportOptions& o);

// The stream parked poison records of an import go to (without the "$parked-" prefix): "kafka:<topic>@<group>",
// so `hostfactory parked --subscription kafka:<topic> --group <group>` lists them.
std::string ImportParkOwner(const std::string& topic, const std::string& group);

// <store>/bridge/<kind>.<name>.json, with '/' in the name replaced.
std::string DefaultStatsPath(const std::string& store_dir, const std::string& kind, const std::string& name);
// Writes `j` to `json_path` and its numeric fields as Prometheus text (hfevents_bridge_<kind>_<field>, with
// labels name and topic) to the same path with .prom, each atomically.
Status WriteStats(const std::string& json_path, const nlohmann::json& j);
// The stats files of the bridges that ran on this store, each with "alive" set from its pid.
std::vector<nlohmann::json> ReadStats(const std::string& store_dir);

}  // namespace hfe::bridge
