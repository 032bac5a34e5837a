// Shared pieces of the hostfactory verbs: opening the store safely and reporting errors in one line.
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "ipc/status.h"
#include "store/event_store.h"

namespace hfe::tools {

struct GlobalOptions {
  std::string store = "/dev/shm/hfevents";
  bool json = false;
  // Geometry used when a verb creates the store.
  uint64_t segment_mb = 64;
  uint64_t stream_capacity = 1u << 20;
  uint64_t dedup_window = 1u << 20;
  std::string sync = "none";
  std::string recovery = "point-in-time";
};

// Prints "hostfactory: <message>" on stderr and returns exit code 1.
int Fail(const Status& s);
int Fail(const std::string& message);
// The library's stream-name rule for a --stream option, checked before anything is opened or printed:
// Ok, or "--stream: <reason>".
Status CheckStreamOption(std::string_view stream);
// The non-empty items of a comma-separated list ("a,,b" -> {"a", "b"}).
std::vector<std::string> Split(const std::string& s);

// Opens the store; `create` allows creating it in a missing or empty directory (never in a directory that
// holds something else).
Result<std::unique_ptr<store::EventStore>> OpenStore(const GlobalOptions& g, bool create);

void AddStoreVerbs(CLI::App& app, GlobalOptions& g, int& rc);
void AddSimulateVerb(CLI::App& app, GlobalOptions& g, int& rc);
void AddHandleVerbs(CLI::App& app, GlobalOptions& g, int& rc);
void AddBenchVerb(CLI::App& app, GlobalOptions& g, int& rc);
void AddDebugVerb(CLI::App& app, GlobalOptions& g, int& rc);
void AddProviderVerb(CLI::App& app, GlobalOptions& g, int& rc);
void AddDemoVerb(CLI::App& app, GlobalOptions& g, int& rc);
void AddSnapshotVerbs(CLI::App& app, GlobalOptions& g, int& rc);
void AddBridgeVerb(CLI::App& app, GlobalOptions& g, int& rc);  // tools/bridge/bridge_verb.cc

}  // namespace hfe::tools
